"""The promotion gate: is there evidence that a candidate is worse than the model in service?

Both models are scored on the same frozen test images, so the comparison is paired: what
matters is the images on which exactly one of the two is right. ``b`` counts the images the
champion got right and the candidate wrong, ``c`` the other way round. If the two were equally
good, each such image would be a fair coin, so ``b ~ Binomial(b + c, 1/2)``; the exact McNemar
test asks how surprising ``b`` is under that coin. The test is one-sided ("is the candidate
worse?") because that is the only question the gate has: a significantly *better* candidate
must never be refused, and a two-sided test would spend half of alpha on that direction and
need more evidence to catch real harm. One or two flipped images are a coin toss (p = 0.5,
0.25) and never refuse; 13 against 1 (p = 0.0009) does, however big the test set.

A comparison fails only when the drop is both *significant* (p < alpha) and *large enough to
matter* (above a practical margin): on tens of thousands of test images a 0.1-point drop can be
significant and still not worth holding a version back. Accuracy is tested at ``alpha``; the
recall of every class both models know is tested on that class's test images, with Holm's
step-down correction across those classes so that six classes do not give six chances of a
false refusal (family-wise level ``class_alpha``).

Statistics cannot see much in a class with a handful of test images, so two hard rules hold
whatever the p-value: a shared class whose recall falls by more than ``max_recall_drop`` *and*
by at least ``max_recall_drop_images`` of its test images fails (one flipped image in a class
of five is a 20-point drop and still only one image), and a shared class with at least
``min_class_test_images`` test images whose candidate recall is below ``recall_floor`` fails,
unless the active version was no better there (refusing it then would keep the worse model).

Classes only the candidate knows are scored on their own; one with fewer than
``min_class_test_images`` test images is reported as not measured, never as a recall of 0.
When the champion finds defect boxes, the candidate's mAP@0.5 on the same images may not fall
more than ``map50_tolerance`` below it (a candidate without a detection head then fails).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields

# Differences of recalls are rounded floats (0.55 - 0.45 = 0.10000000000000009): a drop must
# exceed a limit by more than this to count as beyond it.
_ROUNDING = 1e-9


@dataclass(frozen=True)
class GateRule:
    alpha: float = 0.05                # level of the accuracy test
    class_alpha: float = 0.05          # family-wise level of the per-class recall tests (Holm)
    practical_margin: float = 0.005    # an accuracy drop up to this never refuses
    class_practical_margin: float = 0.02  # a class recall drop up to this never refuses on p alone
    recall_floor: float = 0.5          # a shared class's recall below this fails (if made worse)
    max_recall_drop: float = 0.10      # a class recall drop beyond this fails whatever the p-value ...
    max_recall_drop_images: int = 2    # ... when it is at least this many of the class's test images
    min_test_images: int = 1           # test images of shared classes needed to decide at all
    min_class_test_images: int = 5     # test images a class needs for its recall to count as measured
    map50_tolerance: float = 0.02

    def __post_init__(self) -> None:
        for name in ("alpha", "class_alpha"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        for name in ("practical_margin", "class_practical_margin", "recall_floor", "max_recall_drop",
                     "map50_tolerance"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        for name in ("max_recall_drop_images", "min_test_images", "min_class_test_images"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> GateRule:
        """A rule from e.g. settings; unknown names raise (a misspelt setting must not be ignored)."""
        kinds = {item.name: item.type for item in fields(cls)}
        unknown = sorted(set(values) - set(kinds))
        if unknown:
            raise ValueError(f"unknown gate rule fields: {', '.join(unknown)}; known: {', '.join(kinds)}")
        return cls(**{name: int(value) if kinds[name] == "int" else float(value) for name, value in values.items()})


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
    new_class_recall: dict[str, float] = field(default_factory=dict)  # measured new classes only
    rule: GateRule = field(default_factory=GateRule)
    detection: dict = field(default_factory=dict)  # mAP@0.5 of both versions on the boxed test images
    checks: list[dict] = field(default_factory=list)  # every check with the figures it used

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


# --- the paired test ---------------------------------------------------------------------------

def binomial_upper_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2), summed exactly term by term in log space.

    Log space keeps it O(n) and free of overflow for any test-set size; every term is positive,
    so there is no cancellation and the relative error stays near machine precision.
    """
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    log_terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2)
                 for i in range(k, n + 1)]
    top = max(log_terms)
    return min(1.0, math.exp(top) * sum(math.exp(term - top) for term in log_terms))


def mcnemar_worse_p(worse_only_candidate: int, better_only_candidate: int) -> float:
    """Exact one-sided McNemar p-value for "the candidate is worse".

    ``worse_only_candidate`` (b): images the champion got right and the candidate wrong;
    ``better_only_candidate`` (c): the other way round. No disagreements give p = 1.
    """
    return binomial_upper_tail(worse_only_candidate, worse_only_candidate + better_only_candidate)


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as given): reject where adjusted < alpha."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _discordant(labels: Sequence[str], candidate: Sequence[str], champion: Sequence[str]) -> tuple[int, int]:
    worse = sum(1 for t, a, o in zip(labels, candidate, champion) if o == t and a != t)
    better = sum(1 for t, a, o in zip(labels, candidate, champion) if a == t and o != t)
    return worse, better


# --- sentences ---------------------------------------------------------------------------------

def _p(value: float) -> str:
    return f"{value:.2f}" if value >= 0.01 else f"{value:.4f}" if value >= 0.0001 else f"{value:.1e}"


def _images(n: int, noun: str = "image", plural: str | None = None) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def _paired_sentence(what: str, check: dict, *, where: str = "", adjusted_over: int | None = None) -> str:
    b, c, p, alpha = check["worse_only_candidate"], check["better_only_candidate"], check["p_value"], check["alpha"]
    shown_p = check.get("p_adjusted", p)
    evidence = f"p = {_p(p)}"
    if adjusted_over is not None:
        evidence += f", Holm-adjusted over {_images(adjusted_over, 'class', 'classes')} {_p(shown_p)}"
    head = (f"{what} {check['candidate']:.4f} vs {check['champion']:.4f}{where}: the candidate got {_images(b)} "
            f"wrong that the active version got right and {c} the other way")
    drop = check["champion"] - check["candidate"]
    if shown_p >= alpha:
        return f"{head} ({evidence} >= {alpha:g}): no evidence it is worse"
    if drop <= check["margin"] + _ROUNDING:
        return (f"{head} ({evidence} < {alpha:g}) but the drop {drop:.4f} is within the margin "
                f"{check['margin']:g}: too small to matter")
    return f"{head} ({evidence} < {alpha:g}): worse"


def _check(kind: str, name: str | None, candidate, champion, *, passed: bool, **figures) -> dict:
    return {"check": kind, "class": name, "candidate": candidate, "champion": champion,
            "worse_only_candidate": figures.pop("b", None), "better_only_candidate": figures.pop("c", None),
            "p_value": figures.pop("p", None), "alpha": figures.pop("alpha", None), "passed": passed, **figures}


# --- the checks --------------------------------------------------------------------------------

def _accuracy_check(labels, candidate_predictions, champion_predictions, candidate, champion, rule) -> dict:
    b, c = _discordant(labels, candidate_predictions, champion_predictions)
    p = mcnemar_worse_p(b, c)
    drop = champion.accuracy - candidate.accuracy
    failed = p < rule.alpha and drop > rule.practical_margin + _ROUNDING
    check = _check("accuracy", None, candidate.accuracy, champion.accuracy, b=b, c=c, p=p, alpha=rule.alpha,
                   passed=not failed, margin=rule.practical_margin, test_images=len(labels))
    check["sentence"] = _paired_sentence("accuracy", check)
    return check


def _class_checks(labels, candidate_predictions, champion_predictions, candidate, champion, shared, rule) -> list[dict]:
    """Per shared class with test images: the Holm-corrected paired test, the large-drop rule, the floor."""
    measured = [name for name in shared if name in champion.recall]
    discordant = {}
    for name in measured:
        rows = [i for i, label in enumerate(labels) if label == name]
        discordant[name] = _discordant([labels[i] for i in rows], [candidate_predictions[i] for i in rows],
                                       [champion_predictions[i] for i in rows])
    raw = [mcnemar_worse_p(*discordant[name]) for name in measured]
    checks = []
    for name, p, adjusted in zip(measured, raw, holm_adjust(raw)):
        b, c = discordant[name]
        ours, theirs, support = candidate.recall[name], champion.recall[name], labels.count(name)
        drop = theirs - ours
        paired = _check("class_recall", name, ours, theirs, b=b, c=c, p=p, alpha=rule.class_alpha,
                        passed=not (adjusted < rule.class_alpha and drop > rule.class_practical_margin + _ROUNDING),
                        p_adjusted=adjusted, margin=rule.class_practical_margin, test_images=support)
        paired["sentence"] = _paired_sentence(f"recall of {name}", paired, where=f" on {support} test images",
                                              adjusted_over=len(measured))
        checks += [paired, _drop_check(name, ours, theirs, b, c, support, rule),
                   _floor_check(name, ours, theirs, support, rule)]
    return checks


def _drop_check(name, ours, theirs, b, c, support, rule) -> dict:
    lost = b - c  # = support * (theirs - ours): the net number of this class's images lost
    drop = theirs - ours
    failed = drop > rule.max_recall_drop + _ROUNDING and lost >= rule.max_recall_drop_images
    if failed:
        verdict = (f"a drop of {drop:.4f} ({_images(lost)} net) beyond {rule.max_recall_drop:g}: "
                   "worse whatever the p-value")
    elif drop > rule.max_recall_drop + _ROUNDING:
        verdict = (f"a drop of {drop:.4f} beyond {rule.max_recall_drop:g}, but only {_images(lost)} net, "
                   f"fewer than {rule.max_recall_drop_images}")
    else:
        verdict = f"no drop beyond the hard limit {rule.max_recall_drop:g}"
    return _check("recall_drop", name, ours, theirs, b=b, c=c, passed=not failed, margin=rule.max_recall_drop,
                  test_images=support,
                  sentence=f"recall of {name} {ours:.4f} vs {theirs:.4f} on {support} test images: {verdict}")


def _floor_check(name, ours, theirs, support, rule) -> dict:
    head = f"recall of {name} {ours:.4f} vs {theirs:.4f} on {support} test images"
    if support < rule.min_class_test_images:
        passed, verdict = True, (f"floor {rule.recall_floor:g} not checked: not measured "
                                 f"({_images(support, 'test image')}, fewer than {rule.min_class_test_images})")
    elif ours >= rule.recall_floor:
        passed, verdict = True, f"at or above the floor {rule.recall_floor:g}"
    elif ours >= theirs:
        passed, verdict = True, f"below the floor {rule.recall_floor:g}, but the active version was no better"
    else:
        passed, verdict = False, f"below the floor {rule.recall_floor:g}: fails whatever the test set's size"
    return _check("recall_floor", name, ours, theirs, passed=passed, floor=rule.recall_floor, test_images=support,
                  measured=support >= rule.min_class_test_images, sentence=f"{head}: {verdict}")


def _map50_check(candidate_map50, champion_map50, rule) -> dict | None:
    if champion_map50 is None:
        return None  # an active version without boxes leaves the candidate's mAP as information only
    if candidate_map50 is None:
        passed, sentence = False, (f"the active version finds defect boxes (mAP@0.5 {champion_map50:.4f}); "
                                   "the candidate has no detection head")
    else:
        passed = champion_map50 - candidate_map50 <= rule.map50_tolerance + _ROUNDING
        sentence = (f"mAP@0.5 {candidate_map50:.4f} vs the active version's {champion_map50:.4f}: "
                    + ("within" if passed else "below it by more than") + f" the tolerance {rule.map50_tolerance:.4f}")
    return _check("map50", None, candidate_map50, champion_map50, passed=passed, margin=rule.map50_tolerance,
                  sentence=sentence)


def _new_class_checks(labels, candidate_predictions, new_classes, rule) -> list[dict]:
    recall = score(labels=labels, predictions=candidate_predictions, classes=new_classes).recall
    checks = []
    for name in new_classes:
        support = labels.count(name)
        measured = support >= max(1, rule.min_class_test_images)
        if measured:
            sentence = (f"new class {name}: recall {recall[name]:.4f} on {support} test images "
                        "(the active version does not know it)")
        else:
            sentence = (f"new class {name}: recall not measured ({_images(support, 'test image')}, "
                        f"fewer than {max(1, rule.min_class_test_images)})")
        checks.append(_check("new_class", name, recall[name] if measured else None, None, passed=True,
                             test_images=support, measured=measured, sentence=sentence))
    return checks


def _test_images_check(n: int, rule: GateRule, what: str) -> dict:
    passed = n >= rule.min_test_images
    sentence = (f"{_images(n)} {what}" + ("" if passed else f"; at least {rule.min_test_images} are needed"))
    return _check("test_images", None, n, None, passed=passed, minimum=rule.min_test_images, sentence=sentence)


# --- the decision ------------------------------------------------------------------------------

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
    retired_classes: Sequence[str] = (),
) -> GateDecision:
    """Decide on promotion. With no champion the candidate passes if it was tested at all.

    ``candidate_map50`` / ``champion_map50``: mAP@0.5 on the same boxed test images, None for a
    version without a detection head (or no boxed test images). A class the active version knows
    and the candidate does not fails the gate (a run trained without that class's images would
    silently stop finding it) unless it is in ``retired_classes`` (a class people retired).
    """
    labels = list(labels)
    detection = {"candidate_map50": candidate_map50, "champion_map50": champion_map50,
                 "map50_tolerance": rule.map50_tolerance}
    if champion_predictions is None or champion_classes is None:
        candidate = score(labels=labels, predictions=candidate_predictions, classes=candidate_classes)
        check = _test_images_check(len(labels), rule, "tested")
        reasons = [check["sentence"]] if not check["passed"] else [
            "no active version to compare with: the first tested candidate goes live"]
        return GateDecision(passed=check["passed"], reasons=reasons, compared_classes=list(candidate_classes),
                            candidate=candidate, champion=None, rule=rule, detection=detection, checks=[check])
    if not len(labels) == len(candidate_predictions) == len(champion_predictions):
        raise ValueError("labels and the two models' predictions differ in length")

    shared = [name for name in candidate_classes if name in set(champion_classes)]
    keep = [i for i, label in enumerate(labels) if label in set(shared)]
    shared_labels = [labels[i] for i in keep]
    ours = [candidate_predictions[i] for i in keep]
    theirs = [champion_predictions[i] for i in keep]
    candidate = score(labels=shared_labels, predictions=ours, classes=shared)
    champion = score(labels=shared_labels, predictions=theirs, classes=shared)
    new_classes = [name for name in candidate_classes if name not in set(champion_classes)]

    checks = [_test_images_check(len(shared_labels), rule, "of shared classes")]
    checks += _dropped_class_checks(champion_classes, candidate_classes, retired_classes)
    if checks[0]["passed"]:
        checks.append(_accuracy_check(shared_labels, ours, theirs, candidate, champion, rule))
        checks += _class_checks(shared_labels, ours, theirs, candidate, champion, shared, rule)
    checks += [check for check in [_map50_check(candidate_map50, champion_map50, rule)] if check]
    new = _new_class_checks(labels, candidate_predictions, new_classes, rule)
    return GateDecision(
        passed=all(check["passed"] for check in checks), reasons=_reasons(checks, new), compared_classes=shared,
        candidate=candidate, champion=champion,
        new_class_recall={check["class"]: check["candidate"] for check in new if check["measured"]},
        rule=rule, detection=detection, checks=checks + new,
    )


def _dropped_class_checks(champion_classes: Sequence[str], candidate_classes: Sequence[str],
                          retired_classes: Sequence[str]) -> list[dict]:
    """One failing check per class the active version knows and the candidate does not."""
    known, retired = set(candidate_classes), set(retired_classes)
    return [{
        "check": "class_dropped", "class": name, "candidate": None, "champion": None,
        "worse_only_candidate": None, "better_only_candidate": None, "p_value": None, "alpha": None,
        "passed": False,
        "sentence": f"the active version recognises {name}; the candidate does not (it was trained without "
                    f"{name}'s images): promoting it would stop finding {name}",
    } for name in champion_classes if name not in known and name not in retired]


def _reasons(checks: list[dict], new: list[dict]) -> list[str]:
    """The failures (or, on a pass, the accuracy comparison and any mAP), then what went unmeasured."""
    failed = [check["sentence"] for check in checks if not check["passed"]]
    if failed:
        reasons = failed
    else:
        reasons = [check["sentence"] for check in checks if check["check"] in ("accuracy", "map50")]
        classes = [check for check in checks if check["check"] == "class_recall"]
        if classes:
            reasons.append(f"no class's recall is worse beyond chance or the hard limits "
                           f"({_images(len(classes), 'class', 'classes')} compared)")
    unmeasured = [check["sentence"] for check in checks if check["check"] == "recall_floor" and not check["measured"]]
    return reasons + unmeasured + [check["sentence"] for check in new if not check["measured"]]
