"""The last failure of each model in this process, so /readyz can say that search is lexical
only for now (a query or a batch that could not be embedded fails; the next that works clears
it)."""

from __future__ import annotations

import threading
import time


class _Health:
    """The last failure of each model in this process (a query or a batch that could not be
    embedded), so /readyz can say that search is lexical only for now."""

    def __init__(self) -> None:
        self._failures: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def failed(self, key: str, error: str) -> None:
        with self._lock:
            self._failures[key] = (time.monotonic(), error)

    def worked(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def failures(self) -> dict[str, str]:
        with self._lock:
            return {key: error for key, (_at, error) in self._failures.items()}


health = _Health()
