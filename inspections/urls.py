from django.urls import include, path

from inspections.catalog.pages import uploads
from inspections.line.pages import retention
from inspections.ops.pages import dashboard, home
from inspections.registry.pages import versions as registry
from inspections.review.pages import novelty, review

app_name = "inspections"

urlpatterns = [
    path("", home.home, name="home"),
    path("upload/", uploads.upload, name="upload"),
    path("upload/bulk/", uploads.bulk_upload, name="upload-bulk"),
    path("upload/zip/", uploads.upload_zip, name="upload-zip"),
    path("upload/answers/", uploads.upload_answers, name="upload-answers"),
    path("review/", review.review_queue, name="review-queue"),
    path("review/counts/", review.review_queue_counts, name="review-counts"),
    path("review/<int:image_id>/", review.review_image, name="review-image"),
    path("review/<int:image_id>/decide/", review.review_decide, name="review-decide"),
    path("review/<int:image_id>/undo/<int:review_id>/", review.review_undo, name="review-undo"),
    path("review/groups/", novelty.novelty_group_list, name="novelty-groups"),
    path("review/groups/undo/", novelty.novelty_bulk_undo, name="novelty-undo"),
    path("images/<int:image_id>/heatmap.png", review.image_heatmap, name="image-heatmap"),
    path("images/<int:image_id>/anomaly-map.png", review.image_anomaly_map, name="image-anomaly-map"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("retention/", retention.retention_policies, name="retention"),
    path("retention/remove/", retention.retention_policy_remove, name="retention-remove"),
    # The dashboard's link to the same picture the model page shows (one view serves both).
    path("models/<int:version_id>/confusion-matrix.png", registry.model_version_plot, {"plot": "confusion_matrix"},
         name="model-confusion-matrix"),
    path("api/v1/", include("inspections.api.urls")),
]
