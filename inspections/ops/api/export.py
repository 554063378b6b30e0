"""The labelled data set as a zip (GET dataset-export/)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from inspections.api.base import COMMON_ERRORS, ERROR, ApiView
from inspections.api.downloads import ZIP_RESPONSE, _BinaryRenderer, _zip_response
from inspections.api.permissions import ModelAdminRole
from inspections.ops.services.dataset_export import (
    dataset_export_file_name,
    dataset_export_filters_clean,
    dataset_export_stream,
)


class DatasetExportQuery(serializers.Serializer):
    split = serializers.CharField(required=False, allow_blank=True, help_text="train, val or test; all when absent.")
    label = serializers.CharField(required=False, allow_blank=True, help_text="One class; all when absent.")


class DatasetExport(ApiView):
    role_checks = {"GET": ModelAdminRole}
    renderer_classes = [JSONRenderer, _BinaryRenderer]

    @extend_schema(operation_id="dataset_export", parameters=[DatasetExportQuery],
                   description="The labelled images (ml_admin) as a zip: `<label>/<sha256>.<ext>` folders, excluded "
                               "images under `.excluded/<label>/`, and `manifest.csv` / `manifest.json` (sha256, label, "
                               "split, source, external id, label source and version, who labelled it and when, "
                               "exclusion). `python manage.py import_dataset DIR` reads it back with its splits.",
                   responses={(200, "application/zip"): ZIP_RESPONSE, 400: ERROR, **COMMON_ERRORS})
    def get(self, request):
        query = DatasetExportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = dataset_export_filters_clean(split=query.validated_data.get("split"),
                                               label=query.validated_data.get("label"))
        return _zip_response(dataset_export_stream(filters=filters), dataset_export_file_name(filters=filters))
