"""Start-up checks of the project's own settings (``manage.py check``; run by migrate and the web
server's start-up too), so a bad value is named before the first request meets it."""

from __future__ import annotations

from django.core import checks


@checks.register()
def training_defaults_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The installation's training defaults (``STEELQC_BACKBONE``, ``STEELQC_TRAINING_DEFAULTS``)
    must be parameters a training run accepts: mlcore's parameter schema decides."""
    from django.conf import settings

    from mlcore.training.parameters import PARAMETERS, ParameterError, parameters_clean

    errors = []
    for setting, values in (("STEELQC_BACKBONE", {"backbone": settings.STEELQC_BACKBONE}),
                            ("STEELQC_TRAINING_DEFAULTS", settings.STEELQC_TRAINING_DEFAULTS)):
        try:
            parameters_clean(values)
        except ParameterError as error:
            errors.append(checks.Error(
                f"{setting}: {error.message}", id="inspections.E001",
                hint=f"Training parameters are {', '.join(p.name for p in PARAMETERS)}; their limits are in "
                     "docs/user-guide.md (Training parameters) and `python -m mlcore train --help`."))
    return errors
