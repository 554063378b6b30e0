from django.urls import path

from . import registry_views as views

app_name = "registry"

urlpatterns = [
    path("models/", views.model_version_list, name="model-versions"),
    path("models/rollback/", views.model_version_rollback_page, name="model-version-rollback"),
    path("models/<int:version_id>/", views.model_version_detail, name="model-version"),
    path("models/<int:version_id>/promote/", views.model_version_promote_page, name="model-version-promote"),
    path("models/<int:version_id>/plots/<str:plot>.png", views.model_version_plot, name="model-version-plot"),
    path("training/", views.training_run_list, name="training-runs"),
    path("training/<int:run_id>/", views.training_run_detail, name="training-run"),
    path("training/<int:run_id>/cancel/", views.training_run_cancel_page, name="training-run-cancel"),
]
