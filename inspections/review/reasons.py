"""Why an image is in front of a person, in codes (the API's ``review_reasons``) and in words.

The codes come from ``mlcore.artefact`` (the model's own reasons, stored per prediction) plus
``suspect_label``, which belongs to the image: a training run found its current label unlikely.
The sentences are built here once and shown by the review view, the upload page and the API.
"""

from __future__ import annotations

from mlcore.artefact import (
    REASON_BLANK_FRAME,
    REASON_FOREIGN,
    REASON_LOW_CONFIDENCE,
    REASON_SUSPECT_LABEL,
    REVIEW_REASONS,
)

REASON_TITLES = {
    REASON_FOREIGN: "foreign",
    REASON_LOW_CONFIDENCE: "low confidence",
    REASON_BLANK_FRAME: "blank frame",
    REASON_SUSPECT_LABEL: "suspect label",
}


def reason_sentence(code: str, *, probabilities: dict | None = None, suggested_label: str | None = None) -> str:
    """One reason in words, for people."""
    if code == REASON_FOREIGN:
        return "Unlike anything the model was trained on."
    if code == REASON_BLANK_FRAME:
        return "The frame is blank or saturated — check the camera."
    if code == REASON_LOW_CONFIDENCE:
        top = sorted((probabilities or {}).items(), key=lambda item: item[1], reverse=True)[:2]
        if len(top) == 2:
            return f"The model hesitates between {top[0][0]} and {top[1][0]}."
        return "The model is not confident."
    if code == REASON_SUSPECT_LABEL:
        return f"The label may be wrong: the model thinks {suggested_label}." if suggested_label else \
            "The label may be wrong."
    return code


def prediction_explanation(prediction) -> list[dict]:
    """``[{"code", "text"}]`` for a prediction's own reasons, in the model's order."""
    return [{"code": code, "text": reason_sentence(code, probabilities=prediction.probabilities)}
            for code in (prediction.review_reasons or [])]


def image_review_reasons(image, prediction) -> list[str]:
    """The image's reasons: its latest prediction's, then ``suspect_label`` when its label is suspect."""
    reasons = list(prediction.review_reasons or []) if prediction else []
    if image.suspect_suggestion_id is not None:
        reasons.append(REASON_SUSPECT_LABEL)
    return reasons


def image_explanation(image, prediction) -> list[dict]:
    """``[{"code", "text"}]`` for everything that puts ``image`` in front of a person."""
    explanation = prediction_explanation(prediction) if prediction else []
    if image.suspect_suggestion_id is not None:
        explanation.append({"code": REASON_SUSPECT_LABEL, "text": reason_sentence(
            REASON_SUSPECT_LABEL, suggested_label=image.suspect_suggestion.name)})
    return explanation


def is_known_reason(code: str) -> bool:
    return code in REVIEW_REASONS
