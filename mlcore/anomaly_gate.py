"""The anomaly models' promotion gate: is there evidence that a candidate is worse than the one in service?

An anomaly model is judged on images it never learnt from: held-out good images (labelled
``no_defect``, the test split) and labelled defects (any other class: an anomaly model never
trains on them). Its ``anomaly_score`` is on the scale of its own threshold (above 1 flags the
image), so two models compare on the same numbers:

- **image AUROC**: the chance that a defect scores above a good image (ties count half), how well
  the scores separate the two whatever the threshold;
- **false-alarm rate**: the share of good images flagged;
- **miss rate**: the share of defects not flagged.

With an anomaly model in service both are scored on the same images, so the comparison is paired
as the classifier gate's is (``mlcore.gate``): on good images, ``b`` counts those only the
candidate flags and ``c`` those only the active model flags; the exact one-sided McNemar test asks
whether ``b`` is surprising for two equally good models. A check fails only when the rise is both
significant (p < ``alpha``) and larger than its margin. AUROC fails when it falls more than
``auroc_tolerance`` below the active model's and DeLong's paired test finds the drop significant
(one image moves the AUROC of a small set by more than any sensible tolerance).

The first anomaly model has nothing to compare with: it goes live unless it misses floors where
they can be measured (a false-alarm rate above ``max_false_alarm_rate`` on at least
``min_good_images`` good images; an AUROC below ``auroc_floor`` with at least
``min_defect_images`` defects). A line with only good images has no defects to measure AUROC on:
the model goes live, and the decision says what it could not measure. Pure Python.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from mlcore.gate import mcnemar_worse_p

_ROUNDING = 1e-9
FLAGGED_ABOVE = 1.0  # anomaly_score is image score / threshold: above 1 is anomalous


@dataclass(frozen=True)
class AnomalyGateRule:
    alpha: float = 0.05                # level of the paired tests (false alarms, misses)
    false_alarm_margin: float = 0.01   # a rise of the false-alarm rate up to this never refuses
    miss_margin: float = 0.02          # a rise of the miss rate up to this never refuses
    auroc_tolerance: float = 0.02      # AUROC may fall this far below the active model's
    min_good_images: int = 10          # held-out good images needed to measure false alarms
    min_defect_images: int = 5         # labelled defects needed to measure AUROC and misses
    max_false_alarm_rate: float = 0.1  # first model: a measured false-alarm rate above this refuses
    auroc_floor: float = 0.8           # first model: a measured AUROC below this refuses

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha}")
        for name in ("false_alarm_margin", "miss_margin", "auroc_tolerance", "max_false_alarm_rate", "auroc_floor"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        for name in ("min_good_images", "min_defect_images"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclass
class AnomalyFigures:
    good_images: int
    defect_images: int
    false_alarms: int
    misses: int
    false_alarm_rate: float | None  # None without good images
    miss_rate: float | None         # None without defects
    auroc: float | None             # None unless both kinds of image are there


@dataclass
class AnomalyGateDecision:
    passed: bool
    reasons: list[str]
    candidate: AnomalyFigures
    champion: AnomalyFigures | None
    rule: AnomalyGateRule = field(default_factory=AnomalyGateRule)
    checks: list[dict] = field(default_factory=list)
    kind: str = "anomaly"

    def to_dict(self) -> dict:
        return asdict(self)


def image_auroc(good_scores: Sequence[float], defect_scores: Sequence[float]) -> float | None:
    """P(a defect scores above a good image), ties counting half (Mann-Whitney U / (n_good n_defect))."""
    if not good_scores or not defect_scores:
        return None
    values = sorted([(float(s), 0) for s in good_scores] + [(float(s), 1) for s in defect_scores])
    rank_sum, position = 0.0, 0
    while position < len(values):
        end = position
        while end + 1 < len(values) and values[end + 1][0] == values[position][0]:
            end += 1
        average_rank = (position + end) / 2 + 1  # 1-based ranks, ties share their mean
        rank_sum += average_rank * sum(1 for i in range(position, end + 1) if values[i][1] == 1)
        position = end + 1
    n_defect, n_good = len(defect_scores), len(good_scores)
    return (rank_sum - n_defect * (n_defect + 1) / 2) / (n_defect * n_good)


def _placements(good: Sequence[float], defects: Sequence[float]) -> tuple[list[float], list[float]]:
    """DeLong's placement values: per defect the share of good images below it, per good image the
    share of defects above it (ties half). Their means are both the AUROC."""
    good_sorted, defects_sorted = sorted(good), sorted(defects)

    def below(sorted_values, x):
        return bisect_left(sorted_values, x) + 0.5 * (bisect_right(sorted_values, x) - bisect_left(sorted_values, x))

    per_defect = [below(good_sorted, x) / len(good) for x in defects]
    per_good = [(len(defects) - below(defects_sorted, y)) / len(defects) for y in good]
    return per_defect, per_good


def _covariance(a: Sequence[float], b: Sequence[float]) -> float:
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    return sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b)) / (len(a) - 1)


def auroc_worse_p(candidate_good, candidate_defects, champion_good, champion_defects) -> float:
    """One-sided p-value of DeLong's paired test for "the candidate's AUROC is lower" (same images,
    same order; at least two of each kind)."""
    cand_d, cand_g = _placements(candidate_good, candidate_defects)
    champ_d, champ_g = _placements(champion_good, champion_defects)
    drop = sum(champ_d) / len(champ_d) - sum(cand_d) / len(cand_d)
    variance = ((_covariance(cand_d, cand_d) + _covariance(champ_d, champ_d) - 2 * _covariance(cand_d, champ_d))
                / len(cand_d)
                + (_covariance(cand_g, cand_g) + _covariance(champ_g, champ_g) - 2 * _covariance(cand_g, champ_g))
                / len(cand_g))
    if variance <= 1e-15:
        return 0.0 if drop > _ROUNDING else 1.0
    return 0.5 * math.erfc(drop / math.sqrt(variance) / math.sqrt(2))


def figures(good_scores: Sequence[float], defect_scores: Sequence[float]) -> AnomalyFigures:
    false_alarms = sum(1 for s in good_scores if s > FLAGGED_ABOVE)
    misses = sum(1 for s in defect_scores if not s > FLAGGED_ABOVE)
    return AnomalyFigures(
        good_images=len(good_scores), defect_images=len(defect_scores), false_alarms=false_alarms, misses=misses,
        false_alarm_rate=false_alarms / len(good_scores) if good_scores else None,
        miss_rate=misses / len(defect_scores) if defect_scores else None,
        auroc=image_auroc(good_scores, defect_scores))


def _images(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _p(value: float) -> str:
    return f"{value:.2f}" if value >= 0.01 else f"{value:.4f}" if value >= 0.0001 else f"{value:.1e}"


def _check(kind: str, candidate, champion, *, passed: bool, sentence: str, measured: bool = True, **figures) -> dict:
    return {"check": kind, "class": None, "candidate": candidate, "champion": champion, "passed": passed,
            "measured": measured, "sentence": sentence, **figures}


def _enough(n: int, minimum: int) -> bool:
    return n >= minimum


# --- the first anomaly model: floors --------------------------------------------------------------

def _first_checks(candidate: AnomalyFigures, rule: AnomalyGateRule) -> list[dict]:
    checks = []
    if _enough(candidate.good_images, rule.min_good_images):
        rate = candidate.false_alarm_rate
        passed = rate <= rule.max_false_alarm_rate + _ROUNDING
        checks.append(_check(
            "false_alarm_floor", rate, None, passed=passed, limit=rule.max_false_alarm_rate,
            sentence=f"false-alarm rate {rate:.4f} ({candidate.false_alarms} of {candidate.good_images} held-out good "
                     f"images flagged): " + ("within" if passed else "above") + f" the limit {rule.max_false_alarm_rate:g}"))
    else:
        checks.append(_check(
            "false_alarm_floor", candidate.false_alarm_rate, None, passed=True, measured=False,
            limit=rule.max_false_alarm_rate,
            sentence=f"false-alarm rate not measured: {_images(candidate.good_images, 'held-out good image')}, "
                     f"fewer than {rule.min_good_images} (label more no_defect images; the test split holds them out)"))
    if _enough(candidate.defect_images, rule.min_defect_images) and candidate.auroc is not None:
        passed = candidate.auroc >= rule.auroc_floor - _ROUNDING
        checks.append(_check(
            "auroc_floor", candidate.auroc, None, passed=passed, floor=rule.auroc_floor,
            sentence=f"image AUROC {candidate.auroc:.4f} on {candidate.good_images} good and {candidate.defect_images} "
                     "defect images: " + ("at or above" if passed else "below") + f" the floor {rule.auroc_floor:g}"))
    else:
        checks.append(_check(
            "auroc_floor", candidate.auroc, None, passed=True, measured=False, floor=rule.auroc_floor,
            sentence=f"image AUROC not measured: {_images(candidate.defect_images, 'labelled defect')}, fewer than "
                     f"{rule.min_defect_images}" + ("" if candidate.good_images else " (and no held-out good image)")))
    return checks


# --- with an anomaly model in service: paired comparisons ----------------------------------------

def _paired_flags_check(kind: str, *, ours: Sequence[bool], theirs: Sequence[bool], worse_when_flagged: bool,
                        margin: float, rule: AnomalyGateRule, what: str, noun: str) -> dict:
    """One paired check of flag rates on the same images. ``worse_when_flagged``: a flag is the
    mistake (good images); otherwise a missing flag is (defects)."""
    def mistake(flag: bool) -> bool:
        return flag if worse_when_flagged else not flag

    n = len(ours)
    b = sum(1 for a, o in zip(ours, theirs) if mistake(a) and not mistake(o))  # only the candidate wrong
    c = sum(1 for a, o in zip(ours, theirs) if mistake(o) and not mistake(a))  # only the active model wrong
    rate_ours = sum(map(mistake, ours)) / n
    rate_theirs = sum(map(mistake, theirs)) / n
    p = mcnemar_worse_p(b, c)
    rise = rate_ours - rate_theirs
    failed = p < rule.alpha and rise > margin + _ROUNDING
    head = (f"{what} {rate_ours:.4f} vs {rate_theirs:.4f} on {_images(n, noun)}: the candidate got {b} wrong that "
            f"the active model got right and {c} the other way")
    if p >= rule.alpha:
        verdict = f" (p = {_p(p)} >= {rule.alpha:g}): no evidence it is worse"
    elif not failed:
        verdict = f" (p = {_p(p)} < {rule.alpha:g}) but the rise {rise:.4f} is within the margin {margin:g}: too small to matter"
    else:
        verdict = f" (p = {_p(p)} < {rule.alpha:g}): worse"
    return _check(kind, rate_ours, rate_theirs, passed=not failed, sentence=head + verdict,
                  worse_only_candidate=b, better_only_candidate=c, p_value=p, alpha=rule.alpha, margin=margin,
                  images=n)


def _flags(scores: Sequence[float]) -> list[bool]:
    return [float(s) > FLAGGED_ABOVE for s in scores]


def _paired_checks(candidate_good, candidate_defects, champion_good, champion_defects, candidate: AnomalyFigures,
                   champion: AnomalyFigures, rule: AnomalyGateRule) -> list[dict]:
    checks = []
    if _enough(len(candidate_good), rule.min_good_images):
        checks.append(_paired_flags_check(
            "false_alarms", ours=_flags(candidate_good), theirs=_flags(champion_good), worse_when_flagged=True,
            margin=rule.false_alarm_margin, rule=rule, what="false-alarm rate", noun="held-out good image"))
    else:
        checks.append(_check(
            "false_alarms", candidate.false_alarm_rate, champion.false_alarm_rate, passed=True, measured=False,
            sentence=f"false alarms not compared: {_images(len(candidate_good), 'held-out good image')}, fewer than "
                     f"{rule.min_good_images}"))
    if _enough(len(candidate_defects), rule.min_defect_images):
        checks.append(_paired_flags_check(
            "misses", ours=_flags(candidate_defects), theirs=_flags(champion_defects), worse_when_flagged=False,
            margin=rule.miss_margin, rule=rule, what="miss rate", noun="labelled defect"))
    else:
        checks.append(_check(
            "misses", candidate.miss_rate, champion.miss_rate, passed=True, measured=False,
            sentence=f"misses not compared: {_images(len(candidate_defects), 'labelled defect')}, fewer than "
                     f"{rule.min_defect_images}"))
    if (candidate.auroc is not None and champion.auroc is not None and len(candidate_good) >= 2
            and _enough(len(candidate_defects), max(rule.min_defect_images, 2))):
        drop = champion.auroc - candidate.auroc
        p = auroc_worse_p(candidate_good, candidate_defects, champion_good, champion_defects)
        beyond = drop > rule.auroc_tolerance + _ROUNDING
        passed = not (beyond and p < rule.alpha)
        head = (f"image AUROC {candidate.auroc:.4f} vs the active model's {champion.auroc:.4f} on "
                f"{len(candidate_good)} good and {len(candidate_defects)} defect images")
        if not beyond:
            verdict = f": within the tolerance {rule.auroc_tolerance:g}"
        elif passed:
            verdict = (f": {drop:.4f} lower, beyond the tolerance {rule.auroc_tolerance:g}, but DeLong's test finds no "
                       f"evidence it is worse (p = {_p(p)} >= {rule.alpha:g})")
        else:
            verdict = f": {drop:.4f} lower (DeLong's test p = {_p(p)} < {rule.alpha:g}): worse"
        checks.append(_check("auroc", candidate.auroc, champion.auroc, passed=passed, tolerance=rule.auroc_tolerance,
                             p_value=p, alpha=rule.alpha, sentence=head + verdict))
    else:
        checks.append(_check(
            "auroc", candidate.auroc, champion.auroc, passed=True, measured=False, tolerance=rule.auroc_tolerance,
            sentence=f"image AUROC not compared: {_images(len(candidate_defects), 'labelled defect')}, fewer than "
                     f"{rule.min_defect_images}"))
    return checks


# --- the decision --------------------------------------------------------------------------------

def decide_anomaly(*, candidate_good: Sequence[float], candidate_defects: Sequence[float],
                   champion_good: Sequence[float] | None = None, champion_defects: Sequence[float] | None = None,
                   rule: AnomalyGateRule = AnomalyGateRule()) -> AnomalyGateDecision:
    """Decide on promoting an anomaly model from its ``anomaly_score`` of held-out good images and
    labelled defects, and the active model's scores of the same images in the same order (None: no
    anomaly model in service)."""
    candidate = figures(candidate_good, candidate_defects)
    if champion_good is None or champion_defects is None:
        checks = _first_checks(candidate, rule)
        failed = [check["sentence"] for check in checks if not check["passed"]]
        reasons = failed or ["no active anomaly model to compare with: the first one goes live when it meets the "
                             "floors it can be measured on"]
        reasons += [check["sentence"] for check in checks if check["passed"]] if not failed else []
        return AnomalyGateDecision(passed=not failed, reasons=reasons, candidate=candidate, champion=None, rule=rule,
                                   checks=checks)
    if len(champion_good) != len(candidate_good) or len(champion_defects) != len(candidate_defects):
        raise ValueError("the two models' scores are not of the same images")
    champion = figures(champion_good, champion_defects)
    checks = _paired_checks(candidate_good, candidate_defects, champion_good, champion_defects, candidate, champion,
                            rule)
    failed = [check["sentence"] for check in checks if not check["passed"]]
    reasons = failed or [check["sentence"] for check in checks if check["measured"]] or [
        "nothing could be compared; no evidence it is worse"]
    if not failed:
        reasons += [check["sentence"] for check in checks if not check["measured"]]
    return AnomalyGateDecision(passed=not failed, reasons=reasons, candidate=candidate, champion=champion, rule=rule,
                               checks=checks)
