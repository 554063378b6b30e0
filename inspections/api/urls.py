"""/api/v1/ — see README "REST API" and the OpenAPI document at schema/ (Swagger UI at docs/)."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer, TemplateHTMLRenderer

from . import artefact_views, comparison_views, similarity_views, views
from . import box_views
from . import classify_views
from . import drift_views
from . import threshold_views
from .exceptions import api_not_found
from .permissions import ReadRole

app_name = "api"


class SwaggerUI(SpectacularSwaggerSplitView):
    # HTML for browsers; an API client that asks for JSON gets JSON errors. The split view serves
    # Swagger UI's start-up script from ?script (a file, not inline code): the CSP allows no inline.
    renderer_classes = [TemplateHTMLRenderer, JSONRenderer]
    permission_classes = [ReadRole]
    template_name = "api/swagger_ui.html"  # Swagger UI with a way back to the app


urlpatterns = [
    path("images/", views.ImageListCreate.as_view(), name="image-list"),
    path("images/<int:image_id>/", views.ImageDetail.as_view(), name="image-detail"),
    path("images/<int:image_id>/reviews/", views.ImageReviews.as_view(), name="image-reviews"),
    path("images/<int:image_id>/file/", views.ImageFile.as_view(), name="image-file"),
    path("images/<int:image_id>/boxes/", box_views.ImageBoxes.as_view(), name="image-boxes"),
    path("images/<int:image_id>/similar/", similarity_views.ImageSimilar.as_view(), name="image-similar"),
    path("novelty-groups/", similarity_views.NoveltyGroupList.as_view(), name="novelty-groups"),
    path("reviews/bulk/", similarity_views.BulkReviewCreate.as_view(), name="reviews-bulk"),
    path("drift/", drift_views.Drift.as_view(), name="drift"),
    path("classify/", classify_views.Classify.as_view(), name="classify"),
    path("line-stats/", classify_views.LineStats.as_view(), name="line-stats"),
    path("classes/", views.DefectClassListCreate.as_view(), name="class-list"),
    path("model-versions/", views.ModelVersionList.as_view(), name="model-version-list"),
    path("model-versions/rollback/", views.ModelVersionRollback.as_view(), name="model-version-rollback"),
    path("model-versions/<int:version_id>/", views.ModelVersionDetail.as_view(), name="model-version-detail"),
    path("model-versions/<int:version_id>/promote/", views.ModelVersionPromote.as_view(), name="model-version-promote"),
    path("model-versions/<int:version_id>/compare/<int:other_id>/", comparison_views.ModelVersionCompare.as_view(),
         name="model-version-compare"),
    path("model-versions/<int:version_id>/thresholds/", threshold_views.ModelVersionThresholds.as_view(),
         name="model-version-thresholds"),
    path("model-versions/<int:version_id>/artefacts/", artefact_views.ModelVersionArtefactList.as_view(),
         name="model-version-artefacts"),
    path("model-versions/<int:version_id>/artefacts/<str:name>/", artefact_views.ModelVersionArtefactFile.as_view(),
         name="model-version-artefact"),
    path("training-runs/", views.TrainingRunListCreate.as_view(), name="training-run-list"),
    path("training-runs/<int:run_id>/", views.TrainingRunDetail.as_view(), name="training-run-detail"),
    path("training-runs/<int:run_id>/cancel/", views.TrainingRunCancel.as_view(), name="training-run-cancel"),
    path("training-runs/<int:run_id>/snapshot/", artefact_views.TrainingRunSnapshot.as_view(),
         name="training-run-snapshot"),
    path("dataset-export/", artefact_views.DatasetExport.as_view(), name="dataset-export"),
    path("schema/", SpectacularAPIView.as_view(permission_classes=[ReadRole]), name="schema"),
    path("docs/", SwaggerUI.as_view(url_name="inspections:api:schema"), name="docs"),
    re_path(r"^.*$", api_not_found),
]
