from django.contrib import admin

from .models import (
    ApiToken,
    AuthEvent,
    DatasetSnapshot,
    DatasetSnapshotItem,
    DecisionThresholdChange,
    DefectBox,
    DefectBoxChange,
    DefectClass,
    DriftAlert,
    InspectionImage,
    LineMinute,
    ModelVersion,
    PendingFileDeletion,
    Prediction,
    RetentionPolicy,
    RetentionRun,
    Review,
    TrainingRun,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """For append-only records and machine output: visible, never edited by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DefectClass)
class DefectClassAdmin(admin.ModelAdmin):
    list_display = ["name", "active", "description", "created_at"]
    list_filter = ["active"]
    search_fields = ["name", "description"]


class ReviewInline(admin.TabularInline):
    model = Review
    fk_name = "image"
    extra = 0
    can_delete = False
    readonly_fields = ["created_at", "reviewer", "previous_label", "label", "prediction"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(InspectionImage)
class InspectionImageAdmin(admin.ModelAdmin):
    list_display = ["id", "original_name", "label", "label_source", "split", "status", "source", "created_at"]
    list_filter = ["status", "split", "label", "label_source", "source"]
    search_fields = ["sha256", "original_name", "external_id"]
    readonly_fields = [
        "file", "sha256", "width", "height", "format", "mode", "size_bytes", "uploaded_by", "created_at",
        "label", "label_source", "label_version", "split",
    ]
    inlines = [ReviewInline]


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyAdmin):
    list_display = ["id", "image", "model_version", "label", "confidence", "needs_review", "ood_score", "created_at"]
    list_filter = ["needs_review", "model_version", "label"]
    ordering = ["-id"]  # newest first from the primary key: created_at has a BRIN index, which cannot order


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    list_display = ["id", "image", "previous_label", "label", "reviewer", "created_at"]
    list_filter = ["label", "reviewer"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["number", "status", "backbone", "created_at", "promoted_at"]
    list_filter = ["status", "backbone"]
    readonly_fields = [
        "number", "status", "artifact_path", "backbone", "weight_source", "classes", "metrics",
        "created_at", "created_by", "promoted_at",
        # Changed through the thresholds page or API only, where every change is audited.
        "decision_thresholds", "thresholds_revision",
    ]


@admin.register(DecisionThresholdChange)
class DecisionThresholdChangeAdmin(ReadOnlyAdmin):
    list_display = ["changed_at", "model_version", "kind", "class_name", "old_threshold", "new_threshold", "changed_by",
                    "note"]
    list_filter = ["model_version", "kind", "class_name"]


class DatasetSnapshotItemInline(admin.TabularInline):
    model = DatasetSnapshotItem
    extra = 0
    can_delete = False
    readonly_fields = ["image", "label", "split"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["id", "image_count", "created_at", "checksum"]
    inlines = [DatasetSnapshotItemInline]


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "progress", "phase", "trigger", "requested_by", "created_at", "model_version"]
    list_filter = ["status", "trigger"]
    readonly_fields = [
        "status", "progress", "phase", "requested_by", "created_at", "started_at", "finished_at", "error", "log",
        "snapshot", "model_version", "gate_decision",
    ]


@admin.register(AuthEvent)
class AuthEventAdmin(ReadOnlyAdmin):
    """The auth audit trail: superusers read it; nobody adds, edits or deletes (the database refuses too)."""

    list_display = ["created_at", "kind", "username", "actor", "ip_address", "request_id", "detail"]
    list_filter = ["kind"]
    search_fields = ["username", "ip_address", "request_id"]
    date_hierarchy = "created_at"
    actions = None

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """API tokens, read only (the secret is not stored); made and revoked on the API tokens page."""

    list_display = ["name", "user", "scope", "prefix", "created_at", "expires_at", "last_used_at", "last_used_ip",
                    "revoked_at"]
    list_filter = ["scope"]
    search_fields = ["name", "prefix", "user__username"]
    exclude = ["digest"]


# Plain-text DRF tokens are no longer used; their admin page would only make keys that do not work.
try:
    from rest_framework.authtoken.models import TokenProxy

    admin.site.unregister(TokenProxy)
except (ImportError, admin.sites.NotRegistered):
    pass


@admin.register(DriftAlert)
class DriftAlertAdmin(ReadOnlyAdmin):
    """Opened and closed by the check-drift job only."""

    list_display = ["source", "opened_at", "closed_at", "foreign_share", "image_count", "baseline_foreign_share",
                    "closed_foreign_share"]
    list_filter = ["source"]


@admin.register(DefectBox)
class DefectBoxAdmin(ReadOnlyAdmin):
    """Boxes change through the API (versioned, with history), never here."""

    list_display = ["id", "image", "label", "x0", "y0", "x1", "y1", "source", "created_by", "created_at", "deleted_at"]
    list_filter = ["source", "label"]


@admin.register(DefectBoxChange)
class DefectBoxChangeAdmin(ReadOnlyAdmin):
    list_display = ["changed_at", "image", "box", "action", "changed_by", "boxes_version"]
    list_filter = ["action"]


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    """What classify/ keeps per source (also on the Retention page). Flagged images are always kept."""

    list_display = ["source", "keep_flagged", "sample_rate", "max_per_minute", "max_per_day", "keep_days", "updated_at",
                    "updated_by"]
    readonly_fields = ["keep_flagged", "updated_at", "updated_by"]
    search_fields = ["source"]

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(RetentionRun)
class RetentionRunAdmin(ReadOnlyAdmin):
    """The retention sweep's audit: each run and dry run, what it deleted or would delete."""

    list_display = ["started_at", "dry_run", "trigger", "images_deleted", "bytes_freed", "files_deleted",
                    "files_failed", "more_left", "finished_at"]
    list_filter = ["dry_run", "trigger"]
    date_hierarchy = "started_at"


@admin.register(PendingFileDeletion)
class PendingFileDeletionAdmin(ReadOnlyAdmin):
    """Stored files of deleted images not yet removed from storage; every retention run retries them."""

    list_display = ["name", "size_bytes", "created_at", "attempts", "last_attempt_at", "last_error"]
    search_fields = ["name"]


@admin.register(LineMinute)
class LineMinuteAdmin(ReadOnlyAdmin):
    """Line counts per minute (hour, day once rolled up), written by the classify worker and the roll-up only."""

    list_display = ["minute", "resolution", "source", "model_version", "seen", "kept", "flagged", "latency_ms_max"]
    list_filter = ["resolution", "source"]
    date_hierarchy = "minute"
