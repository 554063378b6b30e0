"""What a model directory holds and how its answers are read: one home, no TensorFlow.

Everything that writes, reads, serves or shows a model artefact (mlcore's training, CLI,
inference and serving; the Django services and pages) imports these names instead of
spelling them again, so a renamed file or a changed review rule changes in one place.
"""

from __future__ import annotations

# Files of a model directory.
MODEL_FILE = "model.keras"
CLASSES_FILE = "classes.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
OOD_FILE = "ood.npz"
SERVING_FILE = "serving.tflite"
SERVING_INT8_FILE = "serving_int8.tflite"  # the reduced-precision serving copy, when it passed its check
DETECTION_FILE = "detection.keras"    # the detection head, when the version has one
DETECTION_CONFIG_FILE = "detection.json"  # its classes, grid and training facts
# Boxes scoring below this are not shown unless asked for: the review view's default box threshold.
KEPT_SCORE = 0.3
SUSPECTS_FILE = "suspects.json"       # labelled images ranked by "this label is probably wrong"
TFLITE_FILE = "model.tflite"          # `python -m mlcore export --format tflite`
ONNX_FILE = "model.onnx"              # the ONNX copy for edge runtimes, when its check against Keras passed
ONNX_CHECK_FILE = "onnx_check.json"   # how the ONNX copy was checked, or why it was left out
EXPORT_FORMATS = ("saved_model", "tflite", "onnx")  # `python -m mlcore export --format`

# An anomaly model's folder (`python -m mlcore anomaly-train`, mlcore.anomaly): CONFIG_FILE says
# "kind": ANOMALY_KIND and holds the threshold and everything else needed to score.
ANOMALY_KIND = "anomaly"
ANOMALY_FEATURES_FILE = "anomaly_features.keras"  # pixels -> patch features, preprocessing inside
ANOMALY_MEMORY_FILE = "anomaly_memory.npz"        # the coreset of good patches the scores are distances to

# Plots written beside the model: page/API name -> file name.
CONFUSION_PLOT_FILE = "confusion_matrix.png"
CURVES_PLOT_FILE = "training_curves.png"
DETECTION_PLOT_FILE = "detection_examples.png"  # test images with true and predicted boxes
PLOT_FILES = {"confusion_matrix": CONFUSION_PLOT_FILE, "training_curves": CURVES_PLOT_FILE,
              "detection_examples": DETECTION_PLOT_FILE}

# Backbones. "auto" picks resnet50 when its ImageNet weights file is on disk.
RESNET50 = "resnet50"
EFFICIENTNET_LITE0 = "efficientnet_lite0"
AUTO_BACKBONE = "auto"
BACKBONES = (RESNET50, EFFICIENTNET_LITE0)
BACKBONE_CHOICES = (AUTO_BACKBONE, *BACKBONES)

# Why a prediction goes to a person. Codes are part of the API and `predict --json`.
REASON_FOREIGN = "foreign"                  # unlike anything the model was trained on
REASON_LOW_CONFIDENCE = "low_confidence"    # top probability or top-2 margin too small
REASON_BLANK_FRAME = "blank_frame"          # the frame check: blank, unlit or saturated
REASON_SUSPECT_LABEL = "suspect_label"      # a person's label the model strongly disputes
REASON_ANOMALY = "anomaly"                  # the anomaly model finds it unlike good steel (anomaly_score > 1)
REVIEW_REASONS = (REASON_FOREIGN, REASON_LOW_CONFIDENCE, REASON_BLANK_FRAME, REASON_SUSPECT_LABEL, REASON_ANOMALY)

# Defaults of the review rule; each artefact records the values it was trained with.
DEFAULT_CONFIDENCE_THRESHOLD = 0.6
DEFAULT_MARGIN_THRESHOLD = 0.2
REVIEW_RULE = ("needs_review = review_reasons is not empty: foreign when the feature score > 1, "
               "blank_frame when the frame check > 1, low_confidence when confidence < "
               "confidence_threshold (the predicted class's own threshold when the version sets one) "
               "or top-2 margin < margin_threshold; on the platform, anomaly when the anomaly model in service "
               "scores the frame above its threshold (anomaly_score > 1) and the frame is not blank")


def review_reasons_for(probabilities, *, feature_score: float, frame_score: float,
                       confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
                       margin_threshold: float = DEFAULT_MARGIN_THRESHOLD,
                       class_thresholds=None) -> list[str]:
    """``review_reasons`` for one prediction's class probabilities (any order).

    ``class_thresholds``, when given, is a confidence threshold per class in the order of
    ``probabilities`` (``mlcore.thresholds.thresholds_in_class_order``): the predicted class's
    one replaces ``confidence_threshold``.
    """
    values = [float(p) for p in probabilities]
    if class_thresholds is not None:
        if len(class_thresholds) != len(values):
            raise ValueError(f"{len(class_thresholds)} class thresholds for {len(values)} probabilities")
        confidence_threshold = float(class_thresholds[max(range(len(values)), key=values.__getitem__)])
    ranked = sorted(values, reverse=True)
    margin = ranked[0] - ranked[1] if len(ranked) > 1 else ranked[0]
    return review_reasons(feature_score=float(feature_score), frame_score=float(frame_score),
                          confidence=ranked[0], margin=margin, confidence_threshold=confidence_threshold,
                          margin_threshold=margin_threshold)


def review_reasons(*, feature_score: float, frame_score: float, confidence: float, margin: float,
                   confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
                   margin_threshold: float = DEFAULT_MARGIN_THRESHOLD) -> list[str]:
    """The codes that send one prediction to review, in a fixed order; empty: auto-accepted.

    ``feature_score`` and ``frame_score`` are on the ``ood_score`` scale (> 1 flags). A blank
    frame is reported as such rather than also as foreign: the fix is the camera, not a label.
    """
    reasons = []
    if frame_score > 1.0:
        reasons.append(REASON_BLANK_FRAME)
    elif feature_score > 1.0:
        reasons.append(REASON_FOREIGN)
    if confidence < confidence_threshold or margin < margin_threshold:
        reasons.append(REASON_LOW_CONFIDENCE)
    return reasons



def with_anomaly_reason(reasons, *, anomalous: bool) -> list[str]:
    """``reasons`` (the classifier's, or none without one) and ``anomaly`` when the anomaly model
    flags the frame. A blank frame stays only a blank frame: the fix is the camera, not a label."""
    reasons = list(reasons)
    if anomalous and REASON_BLANK_FRAME not in reasons:
        reasons.append(REASON_ANOMALY)
    return reasons
