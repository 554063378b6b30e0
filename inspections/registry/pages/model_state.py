"""What every page says while no model is in service: which training run will bring the first one,
its phase and progress (the banner in base.html, kept current by static/js/model_state.js)."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import SimpleLazyObject

from inspections.registry import selectors as registry_selectors
from inspections.registry.models import IN_PROGRESS_STATUSES, TrainingRun


@dataclass(frozen=True)
class ModelState:
    has_active_model: bool
    run: TrainingRun | None  # the latest run while no model is active

    @property
    def run_in_progress(self) -> bool:
        return self.run is not None and self.run.status in IN_PROGRESS_STATUSES


def model_state_now() -> ModelState:
    if registry_selectors.model_in_service():  # a classifier, or an anomaly model alone
        return ModelState(has_active_model=True, run=None)
    return ModelState(has_active_model=False, run=registry_selectors.training_run_list().first())


def model_state(request) -> dict:
    """Template context processor; evaluated only when a page shows the banner (signed-in users)."""
    return {"model_state": SimpleLazyObject(model_state_now)}
