"""How long a training run's phases took and how long the rest should take, read from the run's
own log: the one place the phase changes are written (``phase_log_line``, by the training
service's reporter) and read back (``run_phases``).

An estimate for the phase in progress comes from its own progress where it reports any (features
read, epochs done: what is left at the pace so far), else from earlier runs; the phases still to
come are estimated from earlier runs (the median of the last few that logged every phase), scaled
by image count for the phases whose work grows with it. Pure functions: the selector
(``registry.selectors.training_run_timing``) fetches the rows.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from mlcore.training.progress import PHASE_ORDER, PHASE_SPANS

PREPARE, GATE = "prepare", "gate"
PHASES = (PREPARE, *PHASE_ORDER, GATE)
ANOMALY_PHASE_LABELS = {
    PREPARE: "Preparing (images copied)",
    "scan": "Checking the good images",
    "features": "Reading the good images' patches",
    "coreset": "Choosing the patches to remember",
    "calibrate": "Setting the threshold on held-out good images",
    "save": "Writing the model",
    GATE: "Promotion gate (anomaly)",
}
ANOMALY = "anomaly"
PHASE_LABELS = {
    PREPARE: "Preparing (images copied, backbone loaded)",
    "features": "Reading features",
    "head": "Training the head",
    "finetune": "Fine-tuning the backbone",
    "detection": "Training the detector (its head and the backbone's top blocks)",
    "evaluate": "Evaluating on the test split",
    "export": "Writing the model and its serving copies",
    GATE: "Promotion gate",
}
# Work that grows with the number of images; the other phases take about the same time whatever it is.
SCALES_WITH_IMAGES = frozenset({"features", "head", "finetune", "detection", "evaluate", GATE})
# Phases a run may skip: an earlier run without one counts as 0 s for it.
OPTIONAL = frozenset({"finetune", "detection"})
# The early-stopped head reports epochs out of the most it may run: its pace gives an upper bound.
EARLY_STOPPED = frozenset({"head"})
MIN_WITHIN_FOR_PACE = 0.05
MIN_SECONDS_FOR_PACE = 3.0

_PHASE_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d) phase (\S+)\s*$", re.MULTILINE)


def phase_log_line(phase: str) -> str:
    """The log line that marks the start of ``phase`` (the reporter prefixes the time)."""
    return f"phase {phase}"


@dataclass(frozen=True)
class PhaseTime:
    name: str
    started_at: datetime
    ended_at: datetime | None  # None: still running

    def seconds(self, now: datetime) -> float:
        return max(((self.ended_at or now) - self.started_at).total_seconds(), 0.0)


def run_phases(*, log: str, started_at: datetime | None, finished_at: datetime | None) -> list[PhaseTime]:
    """The phases a run went through, in order, with their times; the time from start to the first
    phase line is ``prepare``. Log stamps carry the time of day (UTC) only: the date is the start's,
    moved on a day whenever a stamp goes back."""
    if started_at is None:
        return []
    previous = started_at.replace(microsecond=0)
    starts: list[tuple[str, datetime]] = [(PREPARE, started_at)]
    for match in _PHASE_LINE.finditer(log or ""):
        hour, minute, second, name = int(match[1]), int(match[2]), int(match[3]), match[4]
        stamp = previous.replace(hour=hour, minute=minute, second=second)
        while stamp < previous - timedelta(seconds=1):
            stamp += timedelta(days=1)
        previous = max(stamp, previous)
        if name == starts[-1][0]:
            continue
        starts.append((name, max(stamp, starts[-1][1])))
    ends = [start for _, start in starts[1:]] + [finished_at]
    return [PhaseTime(name, start, end) for (name, start), end in zip(starts, ends)]


@dataclass(frozen=True)
class EarlierRun:
    phases: list[PhaseTime]
    image_count: int


def last_phase(kind: str = "") -> str:
    """The phase a finished run of ``kind`` has always logged (earlier runs count when they did)."""
    return "save" if kind == ANOMALY else "export"


def _anomaly_spans() -> dict[str, tuple[float, float]]:
    """An anomaly run's phases in order and their spans of the bar (mlcore.anomaly.training), imported
    when an anomaly run's timing is asked for: that module brings SciPy, which the web process
    otherwise never needs at start-up."""
    from mlcore.anomaly.training import PHASE_SPANS as ANOMALY_SPANS

    return ANOMALY_SPANS


def _order(kind: str) -> tuple[str, ...]:
    return (PREPARE, *_anomaly_spans(), GATE) if kind == ANOMALY else PHASES


def typical_seconds(earlier: list[EarlierRun], *, image_count: int, kind: str = "") -> dict[str, float]:
    """Per phase, the median of earlier runs' durations (per image, times ``image_count``, where the
    work grows with images). Only runs that logged the export phase (an anomaly run: save) count:
    older logs folded the export and the gate into other phases."""
    samples: dict[str, list[float]] = {}
    for run in earlier:
        took = {phase.name: phase.seconds(phase.ended_at or phase.started_at) for phase in run.phases}
        if last_phase(kind) not in took or any(phase.ended_at is None for phase in run.phases):
            continue
        for name in _order(kind):
            if name not in took and name not in OPTIONAL:
                continue
            seconds = took.get(name, 0.0)
            if name in SCALES_WITH_IMAGES and run.image_count and image_count:
                seconds *= image_count / run.image_count
            samples.setdefault(name, []).append(seconds)
    return {name: statistics.median(values) for name, values in samples.items()}


def _within(phase: str, progress: float, kind: str = "") -> float | None:
    spans = _anomaly_spans() if kind == ANOMALY else PHASE_SPANS
    if phase not in spans:
        return None
    start, end = spans[phase]
    return min(max((progress - start) / (end - start), 0.0), 1.0)


def _current_remaining(phase: PhaseTime, *, progress: float, typical: float | None,
                       now: datetime, kind: str = "") -> tuple[float | None, str]:
    spent = phase.seconds(now)
    within = _within(phase.name, progress, kind)
    by_pace = (spent * (1 - within) / within
               if within is not None and within >= MIN_WITHIN_FOR_PACE and spent >= MIN_SECONDS_FOR_PACE else None)
    # None too when this phase has already run longer than earlier runs' did.
    by_history = typical - spent if typical is not None and typical > spent else None
    if by_pace is not None and by_history is not None and phase.name in EARLY_STOPPED:
        return (by_pace, "at this phase's pace") if by_pace <= by_history else (by_history, "from earlier runs")
    if by_pace is not None:
        return by_pace, "at this phase's pace"
    if by_history is not None:
        return by_history, "from earlier runs"
    if typical is not None:
        return None, f"longer than earlier runs' {typical:.0f} s"
    return None, "no earlier run to compare with"


def run_timing(*, status: str, progress: float, created_at: datetime, started_at: datetime | None,
               finished_at: datetime | None, log: str, skipped: frozenset[str] = frozenset(),
               earlier: list[EarlierRun] = (), image_count: int = 0, now: datetime, kind: str = "") -> dict:
    """Elapsed time, each phase's time (done, in progress, still to come) with an estimate, and the
    estimated time left and finish, for the run page and the API.

    ``skipped``: phases this run will not have (fine-tuning off, no boxes to detect). ``kind``
    ``anomaly``: an anomaly run's phases; ``earlier`` are then earlier anomaly runs."""
    typical = typical_seconds(list(earlier), image_count=image_count, kind=kind)
    history_runs = sum(1 for run in earlier if any(phase.name == last_phase(kind) for phase in run.phases))
    order = _order(kind)
    labels = ANOMALY_PHASE_LABELS if kind == ANOMALY else PHASE_LABELS
    if started_at is None:
        return {"elapsed_s": None, "waiting_s": round((now - created_at).total_seconds(), 1) if status == "queued"
                else None, "phases": [], "remaining_s": None, "remaining_is_lower_bound": False,
                "finish_at": None, "history_runs": history_runs}
    phases = run_phases(log=log, started_at=started_at, finished_at=finished_at)
    running = status == "running"
    rows, remaining, lower_bound = [], 0.0, False
    for phase in phases:
        current = running and phase.ended_at is None
        row = {"name": phase.name, "label": labels.get(phase.name, phase.name),
               "state": "current" if current else "done", "seconds": round(phase.seconds(now), 1),
               "estimate_s": None, "basis": ""}
        if current:
            left, row["basis"] = _current_remaining(phase, progress=progress, typical=typical.get(phase.name),
                                                    now=now, kind=kind)
            row["estimate_s"] = None if left is None else round(left, 1)
            remaining, lower_bound = remaining + (left or 0.0), left is None
        rows.append(row)
    if running:
        seen = {phase.name for phase in phases}
        later = order[order.index(phases[-1].name) + 1:] if phases[-1].name in order else ()
        for name in later:
            if name in seen or name in skipped or (name in OPTIONAL and not typical.get(name)):
                continue
            expected = typical.get(name)
            rows.append({"name": name, "label": labels[name], "state": "next", "seconds": None,
                         "estimate_s": None if expected is None else round(expected, 1),
                         "basis": "from earlier runs" if expected is not None else "no earlier run to compare with"})
            remaining += expected or 0.0
            lower_bound = lower_bound or expected is None
    end = finished_at or now
    return {
        "elapsed_s": round((end - started_at).total_seconds(), 1), "waiting_s": None, "phases": rows,
        "remaining_s": round(remaining, 1) if running else None,
        "remaining_is_lower_bound": running and lower_bound,
        "finish_at": (now + timedelta(seconds=remaining)).isoformat() if running and not lower_bound else None,
        "history_runs": history_runs,
    }
