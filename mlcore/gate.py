"""The promotion gate: is a candidate measurably no worse than the model in service?

Both models are scored on the same frozen test images. Only classes both models know are
compared (a candidate may know more classes; their recall is reported on its own). The
candidate passes when its accuracy is not lower than the champion's minus a tolerance and no
shared class's recall drops by more than a tolerance -- or by more than one test image of that
class, whichever is larger: with 30 test images of a class one image is 3.3 points, and a gate
that refuses on a single image's coin flip refuses good candidates most of the time. When the
champion finds defect boxes, the candidate's mAP@0.5 on the same images may not fall more than a
tolerance below it (a candidate without a detection head then fails).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class GateRule:
    accuracy_tolerance: float = 0.005
    recall_tolerance: float = 0.02
    min_test_images: int = 1
    recall_tolerance_images: int = 1   # a recall drop of this many test images of a class is noise
    map50_tolerance: float = 0.02

    def recall_slack(self, class_images: int) -> float:
        """The largest recall drop forgiven for a class with ``class_images`` test images."""
        return max(self.recall_tolerance, self.recall_tolerance_images / class_images if class_images else 0.0)


@dataclass
class ModelScore:
    accuracy: float
    recall: dict[str, float]
    images: int


@dataclass
class GateDecision:
    passed: bool
    reasons: list[str]
    compared_classes: list[str]
    candidate: ModelScore | None
    champion: ModelScore | None
    new_class_recall: dict[str, float] = field(default_factory=dict)
    rule: GateRule = field(default_factory=GateRule)
    detection: dict = field(default_factory=dict)  # mAP@0.5 of both versions on the boxed test images

    def to_dict(self) -> dict:
        return asdict(self)


def score(*, labels: Sequence[str], predictions: Sequence[str], classes: Sequence[str]) -> ModelScore:
    """Accuracy over the given images and recall per class (classes absent from ``labels`` are left out)."""
    if len(labels) != len(predictions):
        raise ValueError("labels and predictions differ in length")
    hits: dict[str, int] = {}
    totals: dict[str, int] = {}
    for label, predicted in zip(labels, predictions):
        totals[label] = totals.get(label, 0) + 1
        hits[label] = hits.get(label, 0) + int(label == predicted)
    correct = sum(hits.values())
    return ModelScore(
        accuracy=correct / len(labels) if labels else 0.0,
        recall={name: hits[name] / totals[name] for name in classes if totals.get(name)},
        images=len(labels),
    )


def decide(
    *,
    labels: Sequence[str],
    candidate_predictions: Sequence[str],
    candidate_classes: Sequence[str],
    champion_predictions: Sequence[str] | None = None,
    champion_classes: Sequence[str] | None = None,
    rule: GateRule = GateRule(),
    candidate_map50: float | None = None,
    champion_map50: float | None = None,
) -> GateDecision:
    """Decide on promotion. With no champion the candidate passes if it was tested at all.

    ``candidate_map50`` / ``champion_map50``: mAP@0.5 on the same boxed test images, None for a
    version without a detection head (or no boxed test images).
    """
    detection = {"candidate_map50": candidate_map50, "champion_map50": champion_map50,
                 "map50_tolerance": rule.map50_tolerance}
    if champion_predictions is None or champion_classes is None:
        candidate = score(labels=labels, predictions=candidate_predictions, classes=candidate_classes)
        reasons = [] if len(labels) >= rule.min_test_images else [
            f"only {len(labels)} test images; at least {rule.min_test_images} are needed"
        ]
        reasons = reasons or ["no active version to compare with: the first tested candidate goes live"]
        return GateDecision(
            passed=len(labels) >= rule.min_test_images, reasons=reasons, compared_classes=list(candidate_classes),
            candidate=candidate, champion=None, rule=rule, detection=detection,
        )

    shared = [name for name in candidate_classes if name in set(champion_classes)]
    keep = [i for i, label in enumerate(labels) if label in set(shared)]
    shared_labels = [labels[i] for i in keep]
    candidate = score(labels=shared_labels, predictions=[candidate_predictions[i] for i in keep], classes=shared)
    champion = score(labels=shared_labels, predictions=[champion_predictions[i] for i in keep], classes=shared)
    new_classes = [name for name in candidate_classes if name not in set(champion_classes)]
    new_recall = score(labels=labels, predictions=candidate_predictions, classes=new_classes).recall

    failures: list[str] = []
    if len(shared_labels) < rule.min_test_images:
        failures.append(f"only {len(shared_labels)} test images of shared classes; at least {rule.min_test_images} are needed")
    if candidate.accuracy < champion.accuracy - rule.accuracy_tolerance:
        failures.append(
            f"accuracy {candidate.accuracy:.4f} is below the active version's {champion.accuracy:.4f} "
            f"by more than {rule.accuracy_tolerance:.4f}"
        )
    for name in shared:
        slack = rule.recall_slack(shared_labels.count(name))
        if name in candidate.recall and candidate.recall[name] < champion.recall[name] - slack:
            failures.append(
                f"recall of {name} {candidate.recall[name]:.4f} is below the active version's "
                f"{champion.recall[name]:.4f} by more than {slack:.4f}"
            )
    if champion_map50 is not None:
        if candidate_map50 is None:
            failures.append(f"the active version finds defect boxes (mAP@0.5 {champion_map50:.4f}); "
                            "the candidate has no detection head")
        elif candidate_map50 < champion_map50 - rule.map50_tolerance:
            failures.append(f"mAP@0.5 {candidate_map50:.4f} is below the active version's {champion_map50:.4f} "
                            f"by more than {rule.map50_tolerance:.4f}")
    passed = not failures
    reasons = failures or [
        f"accuracy {candidate.accuracy:.4f} vs {champion.accuracy:.4f} and no class recall dropped beyond tolerance"
    ]
    return GateDecision(
        passed=passed, reasons=reasons, compared_classes=shared, candidate=candidate, champion=champion,
        new_class_recall=new_recall, rule=rule, detection=detection,
    )
