"""The names of the worker tasks and of the queues they run on: their one home.

`worker` tasks take their ``name=`` from here and `inspections` sends by these names, so the
dependency stays one way (worker -> inspections) and a typo is an ImportError, not a message
no worker ever picks up. Routing by name pattern is in settings (``CELERY_TASK_ROUTES``).
"""

INFERENCE_QUEUE = "inference"
TRAINING_QUEUE = "training"
# classify/ only, served by its own worker process: line frames never wait behind upload batches.
LINE_QUEUE = "line"

PREDICT_IMAGES = "worker.tasks.inference.predict_images"
COMPARE_MODEL_VERSIONS = "worker.tasks.inference.compare_model_versions"
REQUEUE_PENDING_IMAGES = "worker.tasks.inference.requeue_pending_images"
CLASSIFY_IMAGES = "worker.tasks.classify.classify_images"
RUN_TRAINING = "worker.tasks.training.run_training"
BUILD_ONNX_COPY = "worker.tasks.training.build_onnx_copy"
START_TRAINING_IF_DUE = "worker.tasks.training.start_training_if_due"
FAIL_STALE_TRAINING_RUNS = "worker.tasks.training.fail_stale_training_runs"
SEND_PROMOTION_WEBHOOK = "worker.tasks.events.send_promotion_webhook"
SEND_DRIFT_WEBHOOK = "worker.tasks.events.send_drift_webhook"
CHECK_DRIFT = "worker.tasks.drift.check_drift"
APPLY_RETENTION = "worker.tasks.retention.apply_retention"
ROLLUP_LINE_STATS = "worker.tasks.line.rollup_line_stats"
HEALTH_PING = "worker.tasks.health.ping"
CLEAR_EXPIRED_SESSIONS = "worker.tasks.access.clear_expired_sessions"

# The events a webhook receiver is told about (each body's ``event``), named by the services
# that raise them and by the webhook sender (inspections.ops.services.webhooks).
PROMOTION_EVENT = "model_version.promoted"
DRIFT_ALERT_EVENT = "drift.alert"
DRIFT_RESOLVED_EVENT = "drift.resolved"
