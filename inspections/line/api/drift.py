"""Drift over the API: per day and source, the active model's foreign share and class mix
against its validation baseline, and the open drift alerts (see ``inspections/services/drift.py``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from inspections.api.base import COMMON_ERRORS, ERROR, ApiView
from inspections.catalog.limits import SOURCE_MAX_LENGTH
from inspections.line.services.drift import MAX_DAYS, drift_report


class DriftQuery(serializers.Serializer):
    days = serializers.IntegerField(required=False, default=14, min_value=1, max_value=MAX_DAYS,
                                    help_text=f"How many days back, today included (1 to {MAX_DAYS}, default 14).")
    source = serializers.CharField(required=False, max_length=SOURCE_MAX_LENGTH,
                                   help_text="Only this source (the images' `source`); all sources when left out.")


class ShareMix(serializers.Serializer):
    images = serializers.IntegerField(help_text="Images the active model predicted.")
    foreign = serializers.IntegerField(help_text="Of those, how many it flagged `foreign`.")
    foreign_share = serializers.FloatField(allow_null=True)
    class_mix = serializers.DictField(child=serializers.FloatField(), help_text="Predicted class -> share.")
    class_mix_distance = serializers.FloatField(
        allow_null=True, help_text="Total-variation distance from the baseline's class mix (0 same, 1 disjoint).")


class DriftDayOutput(ShareMix):
    day = serializers.DateField()
    source = serializers.CharField(allow_blank=True)


class DriftSourceOutput(ShareMix):
    source = serializers.CharField(allow_blank=True)


class DriftBaselineOutput(serializers.Serializer):
    foreign_share = serializers.FloatField(allow_null=True)
    foreign_share_basis = serializers.CharField()
    class_mix = serializers.DictField(child=serializers.FloatField())
    class_mix_basis = serializers.CharField(allow_blank=True)


class DriftAlertOutput(serializers.Serializer):
    id = serializers.IntegerField()
    source = serializers.CharField(allow_blank=True)
    opened_at = serializers.DateTimeField()
    window_hours = serializers.IntegerField()
    threshold = serializers.FloatField()
    foreign_share = serializers.FloatField(help_text="Over the window when the alert opened.")
    image_count = serializers.IntegerField()
    baseline_foreign_share = serializers.FloatField(allow_null=True)


class DriftVersionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()


class DriftSettingsOutput(serializers.Serializer):
    foreign_share_threshold = serializers.FloatField()
    window_hours = serializers.IntegerField()
    min_images = serializers.IntegerField()


class DriftOutput(serializers.Serializer):
    model_version = DriftVersionOutput(allow_null=True, help_text="The active version; null while none is.")
    baseline = DriftBaselineOutput(allow_null=True)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    days = DriftDayOutput(many=True, help_text="One entry per day and source with images, oldest first.")
    sources = DriftSourceOutput(many=True, help_text="Per source over the whole period.")
    open_alerts = DriftAlertOutput(many=True)
    settings = DriftSettingsOutput()


class Drift(ApiView):
    @extend_schema(
        operation_id="drift_report", parameters=[DriftQuery],
        description="Per day and source (by the day images arrived), the share of images the active model flagged "
                    "`foreign` and its class mix, against the version's validation baseline; the open drift alerts "
                    "(a source whose foreign share over STEELQC_DRIFT_WINDOW_HOURS is above "
                    "STEELQC_DRIFT_FOREIGN_SHARE).",
        responses={200: DriftOutput, 400: ERROR, **COMMON_ERRORS},
    )
    def get(self, request):
        query = DriftQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        report = drift_report(days=query.validated_data["days"], source=query.validated_data.get("source"))
        return Response(DriftOutput(report, context=self.get_serializer_context()).data)
