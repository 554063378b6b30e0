"""Why an image is in front of a person, in codes (the API's ``review_reasons``) and in words.

The codes come from ``mlcore.artefact`` (the model's own reasons, stored per prediction) plus
``suspect_label``, which belongs to the image: a training run found its current label unlikely.
The sentences are built here once and shown by the review view, the upload page and the API.
"""

from __future__ import annotations

from django.utils import dateformat, timezone

from mlcore.artefact import (
    REASON_ANOMALY,
    REASON_BLANK_FRAME,
    REASON_FOREIGN,
    REASON_LOW_CONFIDENCE,
    REASON_SUSPECT_LABEL,
    REVIEW_REASONS,
)
from mlcore.ood import FRAME_DARK, FRAME_SATURATED, FRAME_UNIFORM

REASON_TITLES = {
    REASON_FOREIGN: "foreign",
    REASON_LOW_CONFIDENCE: "low confidence",
    REASON_BLANK_FRAME: "blank frame",
    REASON_SUSPECT_LABEL: "suspect label",
    REASON_ANOMALY: "anomaly",
}


def reason_sentence(code: str, *, probabilities: dict | None = None, suggested_label: str | None = None,
                    frame_issue: str | None = None, anomaly_score: float | None = None) -> str:
    """One reason in words, for people."""
    if code == REASON_ANOMALY:
        score = f" (anomaly score {anomaly_score:.2f}; above 1 is flagged)" if anomaly_score is not None else ""
        return (f"Unlike the good steel the anomaly model learnt{score}: a defect, perhaps of a kind no class "
                "names yet. The map (M) shows where; label it with a class (or a new one), no_defect, or exclude it.")
    if code == REASON_FOREIGN:
        return ("Unlike anything the model was trained on. A new kind of defect, another surface, or not an "
                "inspection frame at all (a document, a photo: exclude it).")
    if code == REASON_BLANK_FRAME:
        return _frame_sentence(frame_issue, probabilities)
    if code == REASON_LOW_CONFIDENCE:
        top = sorted((probabilities or {}).items(), key=lambda item: item[1], reverse=True)[:2]
        if len(top) == 2:
            return f"The model hesitates between {top[0][0]} and {top[1][0]}."
        return "The model is not confident."
    if code == REASON_SUSPECT_LABEL:
        return (f"The label may be wrong: the last training run's out-of-fold check suggests {suggested_label}."
                if suggested_label else "The label may be wrong.")
    return code


def _frame_sentence(frame_issue: str | None, probabilities: dict | None) -> str:
    """blank_frame in the words of what the frame check found: a camera to check (dark,
    saturated) or a frame with nothing to judge (uniform), whose class guess means nothing."""
    if frame_issue == FRAME_DARK:
        return "The frame is dark: the strip is unlit or the lens covered — check the lighting and the camera."
    if frame_issue == FRAME_SATURATED:
        return ("Most of the frame is clipped white: overexposed, or a bright sheet in front of the camera — "
                "check the exposure and the lighting.")
    if frame_issue == FRAME_UNIFORM:
        top = max((probabilities or {}).items(), key=lambda item: item[1], default=None)
        guess = f" (its {top[0]} at {100 * top[1]:.1f}% means nothing here)" if top else ""
        return ("The frame is even, with no surface texture: a plain sheet or a lens out of focus, nothing the "
                f"model can judge{guess}. Exclude it if it is not an inspection frame.")
    return "The frame is blank or saturated — check the camera."


def prediction_explanation(prediction) -> list[dict]:
    """``[{"code", "text"}]`` for a prediction's own reasons, in the model's order."""
    return [{"code": code, "text": reason_sentence(code, probabilities=prediction.probabilities,
                                                   frame_issue=getattr(prediction, "frame_issue", None),
                                                   anomaly_score=getattr(prediction, "anomaly_score", None))}
            for code in (prediction.review_reasons or [])]


def image_review_reasons(image, prediction) -> list[str]:
    """The image's reasons: its latest prediction's, then ``suspect_label`` when its label is suspect."""
    reasons = list(prediction.review_reasons or []) if prediction else []
    if image.suspect_suggestion_id is not None:
        reasons.append(REASON_SUSPECT_LABEL)
    return reasons


def suspect_source(image) -> str:
    """Whose opinion a suspect label is, and when: a training run's out-of-fold check."""
    if image.suspect_run_id is None:
        return "the last training run's out-of-fold check"
    when = f" ({dateformat.format(timezone.localtime(image.suspect_flagged_at), 'Y-m-d H:i')})" \
        if image.suspect_flagged_at else ""
    return f"training run {image.suspect_run_id}'s out-of-fold check{when}"


def suspect_sentence(image, prediction) -> str:
    """The suspect label in words: who suggests what, and that it is not the model in service,
    whose own answer may well agree with the label."""
    suggestion = image.suspect_suggestion.name
    text = (f"The label may be wrong: {suspect_source(image)} suggests {suggestion}. That check scores each "
            "training image with a model that never saw it; it is not the model in service")
    if prediction is None or prediction.label_id is None:
        return text + "."
    said = f"{prediction.label.name} ({100 * prediction.confidence:.0f}%)"
    if prediction.label.name == suggestion:
        return text + f", which also predicts {said}."
    return text + f", which predicts {said}."


def image_explanation(image, prediction) -> list[dict]:
    """``[{"code", "text"}]`` for everything that puts ``image`` in front of a person."""
    explanation = prediction_explanation(prediction) if prediction else []
    if image.suspect_suggestion_id is not None:
        explanation.append({"code": REASON_SUSPECT_LABEL, "text": suspect_sentence(image, prediction)})
    return explanation


def is_known_reason(code: str) -> bool:
    return code in REVIEW_REASONS
