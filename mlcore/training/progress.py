"""One monotone 0..1 progress bar over the training phases, and cancellation."""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[float, dict], None]
# Share of the progress bar each phase fills; a skipped phase jumps to its end. "export" writes the
# artefact and converts and checks the serving copies: no epochs to count, but a minute on a real
# model, so it has its own phase (before it the bar sat at 99 % under "evaluate").
# The detector, when a run trains it, takes most of the run (its backbone blocks train on fresh
# views each epoch): it has the widest span.
PHASE_SPANS = {"features": (0.0, 0.3), "head": (0.3, 0.38), "finetune": (0.38, 0.5), "detection": (0.5, 0.92),
               "evaluate": (0.92, 0.96), "export": (0.96, 1.0)}
# The order the phases run in (detection and fine-tuning only when the run trains them).
PHASE_ORDER = ("features", "head", "finetune", "detection", "evaluate", "export")


class TrainingCancelled(Exception):
    """``should_cancel()`` returned True; nothing was written as a finished model."""


class Progress:
    """Maps per-phase fractions to one monotone 0..1 bar and checks for cancellation."""

    def __init__(self, callback: ProgressCallback | None, should_cancel: Callable[[], bool] | None):
        self.callback = callback
        self.should_cancel = should_cancel
        self.fraction = 0.0

    def report(self, phase: str, within: float, *, epoch: int | None = None, metrics: dict | None = None) -> None:
        self.check_cancel()
        start, end = PHASE_SPANS[phase]
        self.fraction = max(self.fraction, start + (end - start) * min(max(within, 0.0), 1.0))
        if self.callback is not None:
            self.callback(self.fraction, {"phase": phase, "epoch": epoch, "metrics": metrics or {}})

    def check_cancel(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise TrainingCancelled("training was cancelled")
