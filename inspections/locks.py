"""Transaction-scoped locks for decisions that must not interleave (e.g. which version is active).

Row locks cannot serialise "make X the only active one" when no row is active yet, so these use
PostgreSQL advisory locks. SQLite (the embedded default) runs write transactions one at a time
already (``transaction_mode: IMMEDIATE``), so nothing more is needed there.
"""

from __future__ import annotations

from django.db import connection

MODEL_REGISTRY_LOCK = 0x5_7EE1_0001
DRIFT_ALERT_LOCK = 0x5_7EE1_00D1  # opening/closing drift alerts


def lock_for_transaction(key: int) -> None:
    """Block until this transaction holds the lock ``key``; it is released at commit/rollback."""
    if not connection.in_atomic_block:
        raise RuntimeError("lock_for_transaction must be called inside transaction.atomic()")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
