"""/api/v1/ — see docs/api.md and the OpenAPI document at schema/ (Swagger UI at docs/)."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer, TemplateHTMLRenderer

from inspections.api.exceptions import api_not_found
from inspections.api.permissions import ReadRole
from inspections.catalog.api.images import DefectClassListCreate, ImageDetail, ImageFile, ImageListCreate
from inspections.line.api import classify as classify_views
from inspections.line.api import drift as drift_views
from inspections.ops.api.export import DatasetExport
from inspections.registry.api import comparison as comparison_views
from inspections.registry.api import thresholds as threshold_views
from inspections.registry.api.artefacts import ModelVersionArtefactFile, ModelVersionArtefactList, TrainingRunSnapshot
from inspections.registry.api.versions import (
    ModelVersionDetail,
    ModelVersionList,
    ModelVersionPromote,
    ModelVersionRollback,
    TrainingRunCancel,
    TrainingRunDetail,
    TrainingRunListCreate,
)
from inspections.review.api import boxes as box_views
from inspections.review.api import similarity as similarity_views
from inspections.review.api.reviews import ImageReviews, ReviewUndo

app_name = "api"


class SwaggerUI(SpectacularSwaggerSplitView):
    # HTML for browsers; an API client that asks for JSON gets JSON errors. The split view serves
    # Swagger UI's start-up script from ?script (a file, not inline code): the CSP allows no inline.
    renderer_classes = [TemplateHTMLRenderer, JSONRenderer]
    permission_classes = [ReadRole]
    template_name = "api/swagger_ui.html"  # Swagger UI with a way back to the app


urlpatterns = [
    path("images/", ImageListCreate.as_view(), name="image-list"),
    path("images/<int:image_id>/", ImageDetail.as_view(), name="image-detail"),
    path("images/<int:image_id>/reviews/", ImageReviews.as_view(), name="image-reviews"),
    path("images/<int:image_id>/file/", ImageFile.as_view(), name="image-file"),
    path("images/<int:image_id>/boxes/", box_views.ImageBoxes.as_view(), name="image-boxes"),
    path("images/<int:image_id>/similar/", similarity_views.ImageSimilar.as_view(), name="image-similar"),
    path("novelty-groups/", similarity_views.NoveltyGroupList.as_view(), name="novelty-groups"),
    path("reviews/bulk/", similarity_views.BulkReviewCreate.as_view(), name="reviews-bulk"),
    path("reviews/bulk/<uuid:bulk_id>/undo/", similarity_views.BulkReviewUndo.as_view(), name="reviews-bulk-undo"),
    path("reviews/<int:review_id>/undo/", ReviewUndo.as_view(), name="review-undo"),
    path("drift/", drift_views.Drift.as_view(), name="drift"),
    path("classify/", classify_views.Classify.as_view(), name="classify"),
    path("line-stats/", classify_views.LineStats.as_view(), name="line-stats"),
    path("classes/", DefectClassListCreate.as_view(), name="class-list"),
    path("model-versions/", ModelVersionList.as_view(), name="model-version-list"),
    path("model-versions/rollback/", ModelVersionRollback.as_view(), name="model-version-rollback"),
    path("model-versions/<int:version_id>/", ModelVersionDetail.as_view(), name="model-version-detail"),
    path("model-versions/<int:version_id>/promote/", ModelVersionPromote.as_view(), name="model-version-promote"),
    path("model-versions/<int:version_id>/compare/<int:other_id>/", comparison_views.ModelVersionCompare.as_view(),
         name="model-version-compare"),
    path("model-versions/<int:version_id>/thresholds/", threshold_views.ModelVersionThresholds.as_view(),
         name="model-version-thresholds"),
    path("model-versions/<int:version_id>/box-thresholds/", threshold_views.ModelVersionBoxThresholds.as_view(),
         name="model-version-box-thresholds"),
    path("model-versions/<int:version_id>/artefacts/", ModelVersionArtefactList.as_view(),
         name="model-version-artefacts"),
    path("model-versions/<int:version_id>/artefacts/<str:name>/", ModelVersionArtefactFile.as_view(),
         name="model-version-artefact"),
    path("training-runs/", TrainingRunListCreate.as_view(), name="training-run-list"),
    path("training-runs/<int:run_id>/", TrainingRunDetail.as_view(), name="training-run-detail"),
    path("training-runs/<int:run_id>/cancel/", TrainingRunCancel.as_view(), name="training-run-cancel"),
    path("training-runs/<int:run_id>/snapshot/", TrainingRunSnapshot.as_view(),
         name="training-run-snapshot"),
    path("dataset-export/", DatasetExport.as_view(), name="dataset-export"),
    path("schema/", SpectacularAPIView.as_view(permission_classes=[ReadRole]), name="schema"),
    path("docs/", SwaggerUI.as_view(url_name="inspections:api:schema"), name="docs"),
    re_path(r"^.*$", api_not_found),
]
