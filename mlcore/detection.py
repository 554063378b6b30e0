"""Where the defects are: an anchor-free detection head on the classifier's backbone.

The head reads the same backbone feature maps the classifier pools (strides 8, 16 and 32), so
one forward pass gives class probabilities, the OOD descriptor and the detection map. It is a
centre-point design: the coarser maps are projected, resized to the finest one and summed (a
light feature pyramid), two 3x3 convolutions follow, and each cell of the stride-8 grid says

- per defect class, how likely a box centre lies in the cell (the heat map, sigmoid);
- the box's width and height as fractions of the image (sigmoid);
- where in the cell the centre lies (sigmoid offset).

Decoding takes local maxima of the heat map (3x3), so no anchors and no box NMS are needed;
boxes are fractions of the image's width and height, origin top-left (the convention of
``DefectBox`` and the API). The map travels as one tensor ``(G, G, K + 4)``: K heat channels,
then width, height, x-offset and y-offset.

Everything here is plain Keras/NumPy; training is in ``mlcore.training.detection`` and the
mAP evaluation (pycocotools, the reference COCO implementation) in ``detection_metrics``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from mlcore.layers import PACKAGE

HEAT_PRIOR = 0.01            # initial heat-map probability (focal-loss practice)
DEFAULT_WIDTH = 96           # channels of the fused pyramid and the head tower
MAX_BOXES = 100              # per image, best first
MIN_SCORE = 0.05             # boxes below this heat are not reported
KEPT_SCORE = 0.3             # boxes a caller shows without asking for more (review view default)


@dataclass(frozen=True)
class DetectedBox:
    label: str
    box: tuple[float, float, float, float]   # x0, y0, x1, y1 as fractions, top-left origin
    score: float

    def to_dict(self) -> dict:
        return {"label": self.label, "box": [round(float(v), 5) for v in self.box], "score": round(float(self.score), 5)}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResizeLike(keras.layers.Layer):
    """Resize the first input's spatial size to the second's (bilinear): the pyramid's upsampling,
    for any input size."""

    def call(self, inputs):
        source, reference = inputs
        shape = ops.shape(reference)
        return ops.image.resize(source, (shape[1], shape[2]), interpolation="bilinear")

    def compute_output_shape(self, input_shapes):
        source, reference = input_shapes
        return (source[0], reference[1], reference[2], source[-1])


def build_detection_head(map_channels: Sequence[int], *, num_classes: int, width: int = DEFAULT_WIDTH,
                         use_maps: Sequence[int] | None = None) -> keras.Model:
    """A Keras model from the backbone's feature maps (finest first) to the detection map.

    ``use_maps``: indices of the maps to fuse (all by default); the output grid is the finest
    of them.
    """
    inputs = [keras.Input(shape=(None, None, int(c)), name=f"map_{i}") for i, c in enumerate(map_channels)]
    chosen = list(use_maps) if use_maps is not None else list(range(len(inputs)))
    if not chosen:
        raise ValueError("the detection head needs at least one feature map")
    finest = inputs[chosen[0]]
    fused = None
    for i in chosen:
        x = keras.layers.Conv2D(width, 1, name=f"lateral_{i}")(inputs[i])
        if inputs[i] is not finest:
            x = ResizeLike(name=f"resize_{i}")([x, finest])
        fused = x if fused is None else keras.layers.Add(name=f"fuse_{i}")([fused, x])
    # Batch normalisation keeps the sum of differently scaled backbone maps in a trainable range
    # (it folds into the convolutions in the serving copy).
    x = keras.layers.BatchNormalization(name="fused_norm")(fused)
    x = keras.layers.Activation("relu", name="fused_relu")(x)
    for j in range(2):
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"tower_{j}")(x)
        x = keras.layers.BatchNormalization(name=f"tower_{j}_norm")(x)
        x = keras.layers.Activation("relu", name=f"tower_{j}_relu")(x)
    prior = float(-np.log((1 - HEAT_PRIOR) / HEAT_PRIOR))
    heat = keras.layers.Conv2D(num_classes, 1, activation="sigmoid", name="heat",
                               bias_initializer=keras.initializers.Constant(prior))(x)
    size = keras.layers.Conv2D(2, 1, activation="sigmoid", name="size",
                               bias_initializer=keras.initializers.Constant(-1.0))(x)
    offset = keras.layers.Conv2D(2, 1, activation="sigmoid", name="offset")(x)
    out = keras.layers.Concatenate(name="detection_map")([heat, size, offset])
    return keras.Model(inputs, out, name="steelqc_detection_head")


# --- targets --------------------------------------------------------------------------------

Boxes = Sequence[tuple[int, float, float, float, float]]   # (class index, x0, y0, x1, y1) fractions


def encode_targets(boxes: Boxes, *, grid: int, num_classes: int, max_boxes: int = MAX_BOXES,
                   gaussian_alpha: float = 0.54):
    """Training targets of one image: heat (G, G, K), and per box (up to ``max_boxes``) the flat
    centre cell, width/height and offset, and a mask.

    Each box puts an elliptical Gaussian on its class's heat map, its axes proportional to the
    box's sides (long thin scratches get long thin peaks), peak 1 at the centre cell.
    """
    heat = np.zeros((grid, grid, num_classes), np.float32)
    cells = np.zeros(max_boxes, np.int32)
    regression = np.zeros((max_boxes, 4), np.float32)
    mask = np.zeros(max_boxes, np.float32)
    ys, xs = np.mgrid[0:grid, 0:grid].astype(np.float32)
    # Larger boxes first, so a small box's centre stays visible where they overlap.
    ordered = sorted(boxes, key=lambda b: -(b[3] - b[1]) * (b[4] - b[2]))[:max_boxes]
    for n, (cls, x0, y0, x1, y1) in enumerate(ordered):
        w, h = x1 - x0, y1 - y0
        cx, cy = (x0 + x1) / 2 * grid, (y0 + y1) / 2 * grid
        col, row = min(int(cx), grid - 1), min(int(cy), grid - 1)
        sx, sy = max(gaussian_alpha * w * grid / 6, 0.5), max(gaussian_alpha * h * grid / 6, 0.5)
        bump = np.exp(-((xs - col) ** 2) / (2 * sx * sx) - ((ys - row) ** 2) / (2 * sy * sy))
        heat[..., cls] = np.maximum(heat[..., cls], bump)
        heat[row, col, cls] = 1.0
        cells[n] = row * grid + col
        regression[n] = (w, h, cx - col, cy - row)
        mask[n] = 1.0
    return heat, cells, regression, mask


def flip_boxes(boxes: Boxes, *, horizontal: bool, vertical: bool) -> list[tuple]:
    out = []
    for cls, x0, y0, x1, y1 in boxes:
        if horizontal:
            x0, x1 = 1 - x1, 1 - x0
        if vertical:
            y0, y1 = 1 - y1, 1 - y0
        out.append((cls, x0, y0, x1, y1))
    return out


# --- decoding -------------------------------------------------------------------------------

def _local_maxima(heat: np.ndarray) -> np.ndarray:
    padded = np.pad(heat, ((1, 1), (1, 1), (0, 0)), constant_values=-1.0)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(0, 1))
    return heat >= windows.max(axis=(-2, -1))


def decode(detection_map: np.ndarray, classes: Sequence[str], *, max_boxes: int = MAX_BOXES,
           min_score: float = MIN_SCORE) -> list[DetectedBox]:
    """Boxes of one image from its (G, G, K + 4) map, best first."""
    k = len(classes)
    heat = detection_map[..., :k]
    grid_h, grid_w = heat.shape[:2]
    peaks = _local_maxima(heat) & (heat >= min_score)
    rows, cols, kinds = np.nonzero(peaks)
    scores = heat[rows, cols, kinds]
    order = np.argsort(-scores)[:max_boxes]
    boxes = []
    for i in order:
        r, c = rows[i], cols[i]
        w, h, ox, oy = detection_map[r, c, k:k + 4]
        cx, cy = (c + ox) / grid_w, (r + oy) / grid_h
        x0, y0 = max(cx - w / 2, 0.0), max(cy - h / 2, 0.0)
        x1, y1 = min(cx + w / 2, 1.0), min(cy + h / 2, 1.0)
        if x1 > x0 and y1 > y0:
            boxes.append(DetectedBox(label=classes[kinds[i]], box=(float(x0), float(y0), float(x1), float(y1)),
                                     score=float(scores[i])))
    return boxes


# --- metrics --------------------------------------------------------------------------------

def detection_metrics(truth: Sequence[Sequence[tuple[str, float, float, float, float]]],
                      predicted: Sequence[Sequence[DetectedBox]], *, classes: Sequence[str],
                      sizes: Sequence[tuple[int, int]]) -> dict:
    """COCO mAP@0.5 and mAP@0.5:0.95, overall and per class, with pycocotools.

    ``truth[i]``: (label, x0, y0, x1, y1) fractions of image i; ``predicted[i]`` its boxes;
    ``sizes[i]``: (width, height) in pixels, so areas and IoUs are the pixel ones COCO expects.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    class_ids = {name: n + 1 for n, name in enumerate(classes)}
    images, annotations, detections = [], [], []
    for i, (boxes, (width, height)) in enumerate(zip(truth, sizes)):
        images.append({"id": i + 1, "width": int(width), "height": int(height)})
        for label, x0, y0, x1, y1 in boxes:
            w, h = (x1 - x0) * width, (y1 - y0) * height
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": class_ids[label],
                                "bbox": [x0 * width, y0 * height, w, h], "area": w * h, "iscrowd": 0})
        for found in predicted[i]:
            x0, y0, x1, y1 = found.box
            detections.append({"image_id": i + 1, "category_id": class_ids[found.label], "score": found.score,
                               "bbox": [x0 * width, y0 * height, (x1 - x0) * width, (y1 - y0) * height]})
    result = {"images": len(images), "boxes": len(annotations), "detections": len(detections),
              "map50": 0.0, "map50_95": 0.0, "per_class": {}, "implementation": "pycocotools"}
    if not annotations:
        return result
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        ground = COCO()
        ground.dataset = {"images": images, "annotations": annotations,
                          "categories": [{"id": i, "name": name} for name, i in class_ids.items()]}
        ground.createIndex()
        found = ground.loadRes(detections) if detections else COCO()
        if not detections:
            return result
        evaluation = COCOeval(ground, found, iouType="bbox")
        evaluation.params.maxDets = [1, 10, MAX_BOXES]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    result["map50_95"], result["map50"] = float(max(evaluation.stats[0], 0.0)), float(max(evaluation.stats[1], 0.0))
    # precision: (IoU thresholds, recall points, classes, area ranges, max detections)
    precision = evaluation.eval["precision"][:, :, :, 0, -1]
    for name, class_id in class_ids.items():
        k = evaluation.params.catIds.index(class_id)
        per_iou = [float(np.mean(p[p > -1])) if np.any(p > -1) else None for p in precision[:, :, k]]
        if per_iou[0] is None:
            continue  # no true box of this class in the set
        result["per_class"][name] = {
            "ap50": per_iou[0], "ap50_95": float(np.mean([v for v in per_iou if v is not None])),
            "boxes": sum(1 for a in annotations if a["category_id"] == class_id)}
    return result
