"""What the bridge did per source, for its one log line per minute per source."""

from __future__ import annotations

import threading
from collections.abc import Iterable

COUNTS = ("taken", "done", "flagged", "failed", "duplicates")


class SourceStats:
    """Counts since the last ``minute()`` and since start; safe to add to from any thread."""

    def __init__(self, source: str):
        self.source = source
        self._lock = threading.Lock()
        self._minute = dict.fromkeys(COUNTS, 0)
        self.total = dict.fromkeys(COUNTS, 0)
        self.last: dict | None = None

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                self._minute[name] += value
                self.total[name] += value

    def results(self, results: Iterable[dict]) -> None:
        results = list(results)
        if results:
            self.add(done=len(results), flagged=sum(bool(result["review_reasons"]) for result in results))
            self.last = results[-1]

    def minute(self) -> dict[str, int]:
        """The counts since the last call, and start counting again."""
        with self._lock:
            counts, self._minute = self._minute, dict.fromkeys(COUNTS, 0)
        return counts
