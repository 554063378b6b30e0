"""The app's models, one module per domain (inspections/<domain>/models.py), re-exported here
so Django finds them under the one app label and migrations keep their references."""

from inspections.access.models import (  # noqa: F401
    ApiToken,
    ApiTokenScope,
    AuthEvent,
    AuthEventKind,
)
from inspections.catalog.models import (  # noqa: F401
    BoxAction,
    BoxSource,
    CLASS_NAME_PATTERN,
    DefectBox,
    DefectBoxChange,
    DefectClass,
    ImageStatus,
    InspectionImage,
    LabelSource,
    NO_DEFECT_CLASS,
    REVIEW_QUEUE_ORDER,
    REVIEW_QUEUE_WAITING,
    Split,
    UNLABELLED_FIRST,
    UNREVIEWED,
    image_upload_to,
)
from inspections.registry.models import (  # noqa: F401
    DatasetSnapshot,
    DatasetSnapshotItem,
    DecisionThresholdChange,
    IN_PROGRESS_STATUSES,
    ModelVersion,
    ModelVersionStatus,
    Retirement,
    TrainingRun,
    TrainingRunStatus,
    TrainingRunTrigger,
    VersionComparison,
    VersionComparisonStatus,
)
from inspections.review.models import (  # noqa: F401
    Prediction,
    Review,
    ReviewDecision,
)
from inspections.line.models import (  # noqa: F401
    DriftAlert,
    LineMinute,
    LineResolution,
    PendingFileDeletion,
    RetentionPolicy,
    RetentionRun,
    RetentionTrigger,
    retention_default_keep_days,
)
