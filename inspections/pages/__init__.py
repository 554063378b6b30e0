"""Every web page of steelqc: home, upload and bulk upload, review queue and review view,
dashboard, and the model registry and training runs (``registry_urls``, namespace ``registry``).

Views here are thin: each checks its role with ``access.role_required``, reads through
``inspections.selectors``, takes actions through a Django form (``forms``) and writes through
``inspections.services`` (labels are also written from the pages' JavaScript through the REST
API, which runs the same services and role checks).
"""
