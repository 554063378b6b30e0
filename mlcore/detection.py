"""Where the defects are: an anchor-free detection head on the classifier's backbone.

The head reads the same backbone feature maps the classifier pools (strides 8, 16 and 32), so
one forward pass gives class probabilities, the OOD descriptor and the detection map. The coarser
maps are projected, resized to the finest one and summed (a light feature pyramid ending at the
stride-8 level), two 3x3 convolutions follow, and each cell of the stride-8 grid says

- per defect class, how likely a box centre lies in the cell (the heat map, sigmoid);
- the box around it: its distances from the cell's centre to the left, top, right and bottom
  edges, as fractions of the image (sigmoid; ``LTRB``, the FCOS/TTFNet form, trained with a GIoU
  loss at every cell near a box centre, see ``mlcore.training.detection_loss``).

Heads trained before the ``LTRB`` form (``CENTRE_SIZE``) gave the box's width, height and the
centre's offset in its cell instead; their ``detection.json`` has no ``decoding`` and they decode
as they always did. Decoding takes local maxima of the heat map (3x3), then a class-aware NMS whose
IoU threshold training chose on the validation split (``BoxDecoding``, kept in ``detection.json``);
boxes are fractions of the image's width and height, origin top-left (the convention of
``DefectBox`` and the API). The map travels as one tensor ``(G, G, K + 4)``: K heat channels, then
the four box channels.

Everything here is plain Keras/NumPy; training is in ``mlcore.training.detection`` and the
mAP evaluation (pycocotools, the reference COCO implementation) in ``detection_metrics``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import keras
import numpy as np
from keras import ops

from mlcore.artefact import KEPT_SCORE  # noqa: F401  (boxes shown without asking; defined with no Keras import)
from mlcore.layers import PACKAGE

HEAT_PRIOR = 0.01            # initial heat-map probability (focal-loss practice)
DEFAULT_WIDTH = 96           # channels of the fused pyramid and the head tower
MAX_BOXES = 100              # per image, best first
MIN_SCORE = 0.05             # boxes below this heat are not reported
LTRB, CENTRE_SIZE = "ltrb", "centre_size"
ENCODINGS = (LTRB, CENTRE_SIZE)
BN_MOMENTUM = 0.9
INITIAL_DISTANCE = 0.1       # a new head's box edges start this far (image fraction) from the cell


@dataclass(frozen=True)
class DetectedBox:
    label: str
    box: tuple[float, float, float, float]   # x0, y0, x1, y1 as fractions, top-left origin
    score: float

    def to_dict(self) -> dict:
        return {"label": self.label, "box": [round(float(v), 5) for v in self.box],
                "score": round(float(self.score), 5)}


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
                         use_maps: Sequence[int] | None = None, upsample: int = 1) -> keras.Model:
    """A Keras model from the backbone's feature maps (finest first) to the ``LTRB`` detection map.

    ``use_maps``: indices of the maps to fuse (all by default); the output grid is the finest
    of them, or ``upsample`` times finer: then the tower's first convolution runs on the fused
    grid, the map is upsampled (bilinear) and the second is depthwise-separable, so a grid of
    four times the cells costs less than two full convolutions on the coarser one. A finer grid
    parts neighbouring defects of one class (a heat-map peak holds one box per cell and its
    neighbours) and places box edges more finely.
    """
    if upsample < 1:
        raise ValueError(f"upsample must be at least 1, got {upsample}")
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
    # Momentum 0.9: the running statistics must settle within a short run's few hundred steps.
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name="fused_norm")(fused)
    x = keras.layers.Activation("relu", name="fused_relu")(x)
    for j in range(2):
        if j == 1 and upsample > 1:
            x = keras.layers.UpSampling2D(size=upsample, interpolation="bilinear", name="upsample")(x)
            conv = keras.layers.SeparableConv2D(width, 3, padding="same", use_bias=False, name=f"tower_{j}")
        else:
            conv = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"tower_{j}")
        x = conv(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"tower_{j}_norm")(x)
        x = keras.layers.Activation("relu", name=f"tower_{j}_relu")(x)
    prior = float(-np.log((1 - HEAT_PRIOR) / HEAT_PRIOR))
    heat = keras.layers.Conv2D(num_classes, 1, activation="sigmoid", name="heat",
                               bias_initializer=keras.initializers.Constant(prior))(x)
    distance = float(np.log(INITIAL_DISTANCE / (1 - INITIAL_DISTANCE)))
    box = keras.layers.Conv2D(4, 1, activation="sigmoid", name="box_ltrb",
                              bias_initializer=keras.initializers.Constant(distance))(x)
    out = keras.layers.Concatenate(name="detection_map")([heat, box])
    return keras.Model(inputs, out, name="steelqc_detection_head")


# --- decoding -------------------------------------------------------------------------------

@dataclass(frozen=True)
class BoxDecoding:
    """How a version's detection map becomes boxes: its box form, the class-aware NMS threshold
    (None: heat-map peaks only) and the limits. Kept in ``detection.json`` as ``decoding``."""

    encoding: str = LTRB
    nms_iou: float | None = None
    min_score: float = MIN_SCORE
    max_boxes: int = MAX_BOXES

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"box encoding must be one of {ENCODINGS}, got {self.encoding!r}")

    def decode(self, detection_map: np.ndarray, classes: Sequence[str]) -> list[DetectedBox]:
        return decode(detection_map, classes, max_boxes=self.max_boxes, min_score=self.min_score,
                      encoding=self.encoding, nms_iou=self.nms_iou)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_facts(cls, facts: Mapping) -> "BoxDecoding":
        """The decoding ``detection.json`` records; a head from before it was recorded is ``CENTRE_SIZE``."""
        recorded = facts.get("decoding")
        return cls(**recorded) if recorded else cls(encoding=CENTRE_SIZE)


def _local_maxima(heat: np.ndarray) -> np.ndarray:
    padded = np.pad(heat, ((1, 1), (1, 1), (0, 0)), constant_values=-1.0)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(0, 1))
    return heat >= windows.max(axis=(-2, -1))


def box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one (x0, y0, x1, y1) box with each row of ``others``."""
    x0, y0 = np.maximum(box[0], others[:, 0]), np.maximum(box[1], others[:, 1])
    x1, y1 = np.minimum(box[2], others[:, 2]), np.minimum(box[3], others[:, 3])
    overlap = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return overlap / np.maximum(area + areas - overlap, 1e-12)


def class_aware_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, *, iou: float) -> np.ndarray:
    """Indices of the boxes kept, best first: greedy NMS within each class (a box of another
    class never suppresses one)."""
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    suppressed = np.zeros(len(scores), bool)
    for position, i in enumerate(order):
        if suppressed[i]:
            continue
        kept.append(int(i))
        rest = order[position + 1:]
        rest = rest[(labels[rest] == labels[i]) & ~suppressed[rest]]
        if len(rest):
            suppressed[rest[box_iou(boxes[i], boxes[rest]) > iou]] = True
    return np.array(kept, dtype=int)


def decode(detection_map: np.ndarray, classes: Sequence[str], *, max_boxes: int = MAX_BOXES,
           min_score: float = MIN_SCORE, encoding: str = LTRB, nms_iou: float | None = None) -> list[DetectedBox]:
    """Boxes of one image from its (G, G, K + 4) map, best first."""
    k = len(classes)
    heat = detection_map[..., :k]
    grid_h, grid_w = heat.shape[:2]
    peaks = _local_maxima(heat) & (heat >= min_score)
    rows, cols, kinds = np.nonzero(peaks)
    scores = heat[rows, cols, kinds]
    regression = detection_map[rows, cols, k:k + 4]
    if encoding == LTRB:
        cx, cy = (cols + 0.5) / grid_w, (rows + 0.5) / grid_h
        corners = np.stack([cx - regression[:, 0], cy - regression[:, 1],
                            cx + regression[:, 2], cy + regression[:, 3]], axis=1)
    else:  # CENTRE_SIZE: width, height, and the centre's offset within its cell
        cx, cy = (cols + regression[:, 2]) / grid_w, (rows + regression[:, 3]) / grid_h
        half_w, half_h = regression[:, 0] / 2, regression[:, 1] / 2
        corners = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    corners = np.clip(corners, 0.0, 1.0).reshape(-1, 4)
    valid = (corners[:, 2] > corners[:, 0]) & (corners[:, 3] > corners[:, 1])
    order = np.flatnonzero(valid)[np.argsort(-scores[valid], kind="stable")]
    if nms_iou is not None and len(order):
        order = order[class_aware_nms(corners[order], scores[order], kinds[order], iou=nms_iou)]
    return [DetectedBox(label=classes[kinds[i]], box=tuple(float(v) for v in corners[i]), score=float(scores[i]))
            for i in order[:max_boxes]]


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
