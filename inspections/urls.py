from django.urls import include, path

from . import views
from .pages import bulk_upload, dashboard, review

app_name = "inspections"

urlpatterns = [
    path("", views.home, name="home"),
    path("upload/", views.upload, name="upload"),
    path("upload/bulk/", bulk_upload.bulk_upload, name="upload-bulk"),
    path("upload/zip/", bulk_upload.upload_zip, name="upload-zip"),
    path("review/", review.review_queue, name="review-queue"),
    path("review/counts/", review.review_queue_counts, name="review-counts"),
    path("review/<int:image_id>/", review.review_image, name="review-image"),
    path("review/<int:image_id>/decide/", review.review_decide, name="review-decide"),
    path("images/<int:image_id>/heatmap.png", review.image_heatmap, name="image-heatmap"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("models/<int:version_id>/confusion-matrix.png", dashboard.model_confusion_matrix,
         name="model-confusion-matrix"),
    path("api/v1/", include("inspections.api.urls")),
]
