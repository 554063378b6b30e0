"""The detector's loss: a focal loss on the heat map plus a GIoU loss on the boxes the cells near
each box centre decode (targets: ``mlcore.training.detection_targets``)."""

from __future__ import annotations


def ltrb_to_corners(box_map, grid_h, grid_w):
    """(B, H, W, 4) distances to the left, top, right and bottom edges -> (x0, y0, x1, y1) fractions."""
    import tensorflow as tf

    cols = (tf.cast(tf.range(grid_w), tf.float32) + 0.5) / tf.cast(grid_w, tf.float32)
    rows = (tf.cast(tf.range(grid_h), tf.float32) + 0.5) / tf.cast(grid_h, tf.float32)
    cx, cy = cols[None, None, :], rows[None, :, None]
    return tf.stack([cx - box_map[..., 0], cy - box_map[..., 1], cx + box_map[..., 2], cy + box_map[..., 3]],
                    axis=-1)


def giou(predicted, target):
    """Generalised IoU of matching (..., 4) corner boxes (Rezatofighi et al. 2019), in [-1, 1]."""
    import tensorflow as tf

    def area(box):
        return tf.maximum(box[..., 2] - box[..., 0], 0.0) * tf.maximum(box[..., 3] - box[..., 1], 0.0)

    def side(low, high):
        return tf.maximum(tf.minimum(predicted[..., high], target[..., high])
                          - tf.maximum(predicted[..., low], target[..., low]), 0.0)

    area_p, area_t = area(predicted), area(target)
    overlap = side(0, 2) * side(1, 3)
    union = area_p + area_t - overlap
    hull = ((tf.maximum(predicted[..., 2], target[..., 2]) - tf.minimum(predicted[..., 0], target[..., 0]))
            * (tf.maximum(predicted[..., 3], target[..., 3]) - tf.minimum(predicted[..., 1], target[..., 1])))
    iou = overlap / tf.maximum(union, 1e-9)
    return iou - (hull - union) / tf.maximum(hull, 1e-9)


def focal_heat_loss(heat, heat_target, *, boxes):
    """CenterNet's focal loss on the heat map (positive: target exactly 1), summed and divided by
    the number of boxes."""
    import tensorflow as tf

    # Squeezed into [1e-4, 1 - 1e-4] affinely: clipping would stop the gradient of a saturated cell.
    heat = heat * (1 - 2e-4) + 1e-4
    positive = tf.cast(tf.equal(heat_target, 1.0), tf.float32)
    positive_loss = -tf.math.log(heat) * tf.square(1 - heat) * positive
    negative_loss = -tf.math.log(1 - heat) * tf.square(heat) * tf.pow(1 - heat_target, 4) * (1 - positive)
    return (tf.reduce_sum(positive_loss) + tf.reduce_sum(negative_loss)) / boxes


def detection_loss(output, heat_target, box_target, box_weight, *, num_classes: int, box_loss_weight: float):
    """(total, focal part, GIoU part) for a batch: ``output`` (B, G, G, K + 4) from the head,
    ``heat_target`` (B, G, G, K), ``box_target`` (B, G, G, 4) corners, ``box_weight`` (B, G, G)
    summing to 1 per box. The GIoU part is the weighted mean of 1 - GIoU over the boxes."""
    import tensorflow as tf

    boxes = tf.maximum(tf.reduce_sum(tf.cast(tf.equal(heat_target, 1.0), tf.float32)), 1.0)
    focal = focal_heat_loss(output[..., :num_classes], heat_target, boxes=boxes)
    shape = tf.shape(output)
    corners = ltrb_to_corners(output[..., num_classes:num_classes + 4], shape[1], shape[2])
    box = tf.reduce_sum((1.0 - giou(corners, box_target)) * box_weight) / tf.maximum(tf.reduce_sum(box_weight), 1e-9)
    return focal + box_loss_weight * box, focal, box
