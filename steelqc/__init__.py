from .celery import app as celery_app

__version__ = "1.0.0"  # recorded in backups beside the schema's migrations

__all__ = ("__version__", "celery_app")
