from django.apps import AppConfig


class InspectionsConfig(AppConfig):
    name = "inspections"
    verbose_name = "Inspections"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The auth audit trail's signal receivers (inspections/access/audit.py); importing checks
        # registers the settings checks.
        from inspections import checks  # noqa: F401
        from inspections.access import audit as auth_audit

        auth_audit.connect_library_signals()
