from django.urls import path

from inspections.registry.pages import comparison, thresholds
from inspections.registry.pages import versions as registry

app_name = "registry"

urlpatterns = [
    path("models/", registry.model_version_list, name="model-versions"),
    path("models/compare/", comparison.model_version_compare, name="model-version-compare"),
    path("models/rollback/", registry.model_version_rollback_page, name="model-version-rollback"),
    path("models/<int:version_id>/", registry.model_version_detail, name="model-version"),
    path("models/<int:version_id>/promote/", registry.model_version_promote_page, name="model-version-promote"),
    path("models/<int:version_id>/thresholds/", thresholds.model_version_thresholds_save,
         name="model-version-thresholds"),
    path("models/<int:version_id>/box-thresholds/", thresholds.model_version_box_thresholds_save,
         name="model-version-box-thresholds"),
    path("models/<int:version_id>/plots/<str:plot>.png", registry.model_version_plot, name="model-version-plot"),
    path("training/", registry.training_run_list, name="training-runs"),
    path("training/start/", registry.training_run_start_page, name="training-run-start"),
    path("training/<int:run_id>/", registry.training_run_detail, name="training-run"),
    path("training/<int:run_id>/cancel/", registry.training_run_cancel_page, name="training-run-cancel"),
]
