"""The app's models, one module per domain (inspections/<domain>/models.py), re-exported here
so Django finds them under the one app label and migrations keep their references."""

from inspections.access.models import (  # noqa: F401
    ApiToken, ApiTokenScope, AuthEvent, AuthEventKind,
)
from inspections.catalog.models import (  # noqa: F401
    CLASS_NAME_PATTERN, NO_DEFECT_CLASS, REVIEW_QUEUE_ORDER, REVIEW_QUEUE_WAITING, UNLABELLED_FIRST, UNREVIEWED,
    BoxAction, BoxSource, DefectBox, DefectBoxChange, DefectClass, ImageStatus, InspectionImage, LabelSource,
    Split, image_upload_to,
)
from inspections.line.models import (  # noqa: F401
    BridgeFrame, BridgeFrameOrigin, BridgeFrameState, BridgeMessage, DriftAlert, LineMinute, LineResolution,
    PendingFileDeletion, RetentionPolicy, RetentionRun, RetentionTrigger, retention_default_keep_days,
)
from inspections.registry.models import (  # noqa: F401
    IN_PROGRESS_STATUSES, DatasetSnapshot, DatasetSnapshotItem, DecisionThresholdChange, ModelVersion,
    ModelVersionKind, ModelVersionStatus, Retirement, ThresholdKind, TrainingRun, TrainingRunStatus, TrainingRunTrigger,
    VersionComparison, VersionComparisonStatus,
)
from inspections.review.models import (  # noqa: F401
    Prediction, Review, ReviewDecision,
)
