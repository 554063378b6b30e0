"""Start-up checks of the project's own settings (``manage.py check``; run by migrate and the web
server's start-up too), so a bad value is named before the first request meets it."""

from __future__ import annotations

from django.core import checks


@checks.register()
def training_defaults_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """STEELQC_TRAINING_DEFAULTS must be parameters a training run accepts."""
    from inspections.errors import ApplicationError
    from inspections.registry.services.training import training_parameters_clean

    try:
        training_parameters_clean({})
    except ApplicationError as error:
        return [checks.Error(f"STEELQC_TRAINING_DEFAULTS: {error.message}", id="inspections.E001",
                             hint="Use the names and ranges of the API's training parameters (docs/api.md, training runs).")]
    return []
