"""Line clients: ``POST classify/`` (predict, keep only what the retention policy keeps) and
``GET line-stats/`` (the per-minute counts). See ``inspections/services/line_classify.py``."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from inspections.api.base import COMMON_ERRORS, ERROR, ApiView
from inspections.api.parsers import BoundedFormParser, UploadSizeLimitHandler
from inspections.api.permissions import ReadRole, UploadRole
from inspections.catalog.api.serializers import UploadInput
from inspections.catalog.limits import SOURCE_MAX_LENGTH
from inspections.catalog.services import image_validation
from inspections.catalog.services.images import upload_display_name
from inspections.errors import ApplicationError, error_body
from inspections.line.services.classify import ClassifyFile, classify_request, idempotency_key_checked
from inspections.line.services.stats import (
    RESOLUTIONS,
    bucket_start,
    kept_days,
    line_resolution_for,
    line_stats,
    resolution_covers,
)
from inspections.review import prediction_events

LINE_STATS_MAX_BUCKETS = 10080


class ClassifyQuery(serializers.Serializer):
    timeout = serializers.FloatField(
        required=False, min_value=1,
        help_text="Seconds to wait for the answer (1 to STEELQC_CLASSIFY_MAX_TIMEOUT_S, default "
                  "STEELQC_CLASSIFY_DEFAULT_TIMEOUT_S); past it the answer is 504 classify_timeout.")

    def validate_timeout(self, value: float) -> float:
        limit = settings.STEELQC_CLASSIFY_MAX_TIMEOUT_S
        if not math.isfinite(value) or value > limit:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {limit}.")
        return value


CLASSIFY_PREDICTION = inline_serializer("ClassifyPrediction", {
    "label": serializers.CharField(allow_null=True, help_text="null when an anomaly model answers alone (no classifier)."),
    "confidence": serializers.FloatField(allow_null=True),
    "probabilities": serializers.DictField(child=serializers.FloatField(), help_text="Class name -> probability."),
    "needs_review": serializers.BooleanField(),
    "review_reasons": serializers.ListField(child=serializers.CharField(),
                                            help_text="foreign, low_confidence, blank_frame, anomaly; empty when "
                                                      "accepted."),
    "frame_issue": serializers.CharField(allow_null=True, help_text="With blank_frame: dark, saturated or uniform."),
    "ood_score": serializers.FloatField(allow_null=True),
    "anomaly_score": serializers.FloatField(
        allow_null=True, help_text="How unlike good steel the frame is (above 1: reason anomaly); null without an "
                                   "active anomaly model."),
    "anomaly_model_version": serializers.IntegerField(allow_null=True, help_text="Id of the anomaly model that scored it."),
    "boxes": serializers.ListField(child=serializers.DictField(),
                                   help_text="Where the defects are, best first: [{label, box: [x0, y0, x1, y1] "
                                             "fractions, score, box_threshold (the class's on this version), "
                                             "above_threshold (score >= box_threshold; the review view shows only "
                                             "these)}]; empty without a detection head."),
    "latency_ms": serializers.FloatField(),
    "model_version": serializers.IntegerField(),
    "model_version_number": serializers.IntegerField(),
}, required=False)

CLASSIFY_RESULT = inline_serializer("ClassifyResult", {
    "filename": serializers.CharField(),
    "prediction": CLASSIFY_PREDICTION,
    "kept": serializers.BooleanField(required=False, help_text="Whether the retention policy kept the image."),
    "image_id": serializers.IntegerField(allow_null=True, required=False, help_text="The kept image's id, else null."),
    "error": serializers.JSONField(required=False, help_text="Instead of the fields above when the file was refused."),
})


class Classify(ApiView):
    role_checks = {"POST": UploadRole}
    throttle_scopes = {"POST": "upload"}
    parser_classes = [MultiPartParser, BoundedFormParser]

    def initial(self, request, *args, **kwargs):
        request._request.upload_handlers.insert(0, UploadSizeLimitHandler(request._request))
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="classify",
        summary="Classify line images; keep only what the retention policy keeps",
        description=(
            "Multipart field `file`, repeatable, with optional `source` and `external_id`, validated as uploads "
            "are. The images are predicted without being stored first; afterwards the source's retention policy "
            "keeps every image with a review reason and a sampled share of the rest (with caps). Answer 200 "
            "`{\"results\": [...]}`, one entry per file in order: `{filename, prediction, kept, image_id}` "
            "(`image_id` the kept image's id, else null), or `{filename, error}` for a refused file (or one the "
            "worker could not decode); 400 `all_files_refused` "
            "when every file was refused. Past `?timeout=` seconds: 504 `classify_timeout`; send the same files "
            "again with the same `Idempotency-Key` header and the first request's answer is returned (or awaited) "
            "instead of classifying and counting the frames twice. Without a key, a request no worker took "
            "before its deadline is dropped and counted as `dropped` in line-stats/. 409 `no_active_model`, "
            "`idempotency_key_reused` (the key came with other files); 503 `too_many_waiters`, `queue_unavailable`."
        ),
        parameters=[ClassifyQuery, OpenApiParameter(
            "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
            description="Any unique string per request (a UUID), 1 to 200 printable ASCII characters; reuse it "
                        "only to retry the same files. Remembered STEELQC_CLASSIFY_IDEMPOTENCY_TTL_S (24 h).")],
        request={"multipart/form-data": UploadInput},
        responses={200: inline_serializer("ClassifyOutput", {"results": serializers.ListField(child=CLASSIFY_RESULT)}), 400: ERROR, 413: ERROR,
                   409: ERROR, 503: ERROR, 504: ERROR, **COMMON_ERRORS},
    )
    def post(self, request):
        query = ClassifyQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        timeout = query.validated_data.get("timeout", settings.STEELQC_CLASSIFY_DEFAULT_TIMEOUT_S)
        idempotency_key = request.headers.get("Idempotency-Key")
        if idempotency_key is not None:
            idempotency_key_checked(idempotency_key)
        try:
            with prediction_events.waiter_slot():
                return self._post(request, timeout=timeout, idempotency_key=idempotency_key or "")
        except prediction_events.TooManyWaiters:
            body = error_body("too_many_waiters", "Too many requests are waiting for their answers on this server; "
                              "retry shortly.")
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "1"})

    def _post(self, request, *, timeout: float, idempotency_key: str) -> Response:
        payload = UploadInput(data=request.data)
        payload.is_valid(raise_exception=True)
        source, external_id = image_validation.upload_fields_checked(
            source=payload.validated_data["source"], external_id=payload.validated_data["external_id"])
        accepted: list[ClassifyFile] = []
        results: list[dict | None] = []
        for uploaded in payload.validated_data["file"]:
            try:
                accepted.append(self._validated(uploaded))
                results.append(None)
            except ApplicationError as error:
                results.append({"filename": uploaded.name,
                                "error": error_body(error.code, error.message, error.details)["error"]})
        if not accepted:
            if len(results) == 1:  # one file: its own error, as an upload of it would answer
                error = results[0]["error"]
                code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if error["code"] == "file_too_large" else 400
                return Response({"error": error}, status=code)
            body = error_body("all_files_refused", "None of the files was accepted; see details.results.",
                              {"results": results})
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        answers = classify_request(files=accepted, source=source, external_id=external_id,
                                   uploaded_by=request.user, timeout_s=timeout, idempotency_key=idempotency_key)
        if answers is None:
            body = error_body("classify_timeout", f"No answer within {timeout:g} s; send the images again (with the "
                              "same Idempotency-Key, so that frames a worker still finishes are not counted twice).")
            return Response(body, status=status.HTTP_504_GATEWAY_TIMEOUT)
        answers_iter = iter(answers)
        return Response({"results": [result or next(answers_iter) for result in results]})

    @staticmethod
    def _validated(uploaded) -> ClassifyFile:
        content = image_validation.uploaded_file_read(uploaded)
        facts = image_validation.image_facts_from_bytes(content)
        return ClassifyFile(filename=upload_display_name(uploaded.name or ""), content=content, sha256=facts.sha256)


LINE_STATS_EPOCH = datetime(2000, 1, 1, tzinfo=dt_timezone.utc)


class LineStatsQuery(serializers.Serializer):
    source = serializers.CharField(required=False, max_length=SOURCE_MAX_LENGTH, allow_blank=True,
                                   help_text="Only this source; all sources when left out.")
    since = serializers.DateTimeField(required=False, help_text="From this time (default: one hour ago), moved back "
                                                                "to the start of its bucket; not in the future.")
    resolution = serializers.ChoiceField(
        choices=RESOLUTIONS, required=False,
        help_text="Bucket size: minute, hour or (local) day. Default: the finest whose rows still cover `since` -- "
                  "minute within STEELQC_LINE_MINUTES_KEEP_DAYS (3 days), hour within STEELQC_LINE_HOURS_KEEP_DAYS "
                  "(90 days), else day. A resolution finer than the rows kept that far back is refused (400).")

    def validate(self, data):
        now = timezone.now()
        since = data.get("since") or now - timedelta(hours=1)
        if since > now:
            raise serializers.ValidationError({"since": ["Not in the future."]})
        since = max(since, LINE_STATS_EPOCH)  # nothing is older; keeps local-time arithmetic in range
        resolution = data.get("resolution") or line_resolution_for(since=since, now=now)
        if not resolution_covers(resolution, since=since, now=now):
            raise serializers.ValidationError({"since": [
                f"{resolution} counts are kept {kept_days(resolution)} days, then merged into coarser ones; ask for "
                "a coarser resolution or leave it out."]})
        return {**data, "since": since, "resolution": resolution}


LINE_BUCKET = inline_serializer("LineBucket", {
    "source": serializers.CharField(allow_blank=True),
    "start": serializers.DateTimeField(help_text="The bucket's start (a minute, a local hour or a local day)."),
    "model_versions": serializers.ListField(child=serializers.IntegerField(allow_null=True)),
    "seen": serializers.IntegerField(), "kept": serializers.IntegerField(),
    "flagged": serializers.IntegerField(help_text="Images with any review reason."),
    "dropped": serializers.IntegerField(help_text="Frames dropped unclassified because their request's deadline had "
                                                "passed before a worker took it (answered 504; not in `seen`)."),
    "per_class": serializers.DictField(child=serializers.IntegerField(), help_text="Predicted class -> images."),
    "per_reason": serializers.DictField(child=serializers.IntegerField(), help_text="Review reason -> images."),
    "kept_per_class": serializers.DictField(child=serializers.IntegerField()),
    "kept_per_reason": serializers.DictField(child=serializers.IntegerField()),
    "confidence_histogram": serializers.ListField(child=serializers.IntegerField(),
                                                  help_text="Ten counts: confidence 0-0.1, ..., 0.9-1."),
    "latency_ms_mean": serializers.FloatField(allow_null=True), "latency_ms_max": serializers.FloatField(),
})


class LineStats(ApiView):
    role_checks = {"GET": ReadRole}

    @extend_schema(operation_id="line_stats", parameters=[LineStatsQuery],
                   description="Per source and bucket of time, what classify/ saw: images seen and kept, flagged "
                               "ones, per predicted class and review reason (also of the kept ones), a ten-bin "
                               "confidence histogram, latency. Newest first, summed over model versions, at most "
                               f"{LINE_STATS_MAX_BUCKETS} buckets (`truncated` says when more exist). Minutes are "
                               "merged into hours after STEELQC_LINE_MINUTES_KEEP_DAYS and hours into days after "
                               "STEELQC_LINE_HOURS_KEEP_DAYS; `resolution` picks the bucket size.",
                   responses={200: inline_serializer("LineStatsOutput", {
                       "resolution": serializers.ChoiceField(choices=RESOLUTIONS),
                       "since": serializers.DateTimeField(help_text="The first bucket's start."),
                       "truncated": serializers.BooleanField(),
                       "buckets": serializers.ListField(child=LINE_BUCKET)}),
                              400: ERROR, **COMMON_ERRORS})
    def get(self, request):
        query = LineStatsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        found = line_stats(**query.validated_data, limit=LINE_STATS_MAX_BUCKETS + 1)
        buckets = found[:LINE_STATS_MAX_BUCKETS]
        resolution = query.validated_data["resolution"]
        return Response({
            "resolution": resolution, "since": bucket_start(query.validated_data["since"], resolution).isoformat(),
            "truncated": len(found) > len(buckets),
            "buckets": [{**bucket, "start": bucket["start"].isoformat()} for bucket in buckets],
        })
