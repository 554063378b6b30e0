"""Celery task modules and worker entry points. Tasks are thin: they call inspections services."""
