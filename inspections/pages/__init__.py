"""The browser workspace: review queue and review view, bulk upload, dashboard.

Views here are thin: they check the role, read through ``inspections.selectors`` and write
through ``inspections.services`` (labels are also written from the pages' JavaScript through
the REST API, which runs the same services and role checks).
"""
