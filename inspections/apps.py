from django.apps import AppConfig


class InspectionsConfig(AppConfig):
    name = "inspections"
    verbose_name = "Inspections"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The auth audit trail's signal receivers (inspections/auth_audit.py).
        from inspections import auth_audit, checks  # noqa: F401 -- checks registers the settings checks

        auth_audit.connect_library_signals()
