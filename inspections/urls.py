from django.urls import include, path

from . import views

app_name = "inspections"

urlpatterns = [
    path("", views.home, name="home"),
    path("upload/", views.upload, name="upload"),
    path("api/v1/", include("inspections.api.urls")),
]
