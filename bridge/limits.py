"""Per-device bounds the bridge enforces before a payload reaches Kafka.

:class:`OpenWalks` bounds how many distinct walks one subject may have open at once. A walk is
open from its first accepted message until it has been idle for ``idle_seconds``; a message that
would open one walk more than ``max_per_subject`` is refused (the bridge dead-letters it with a
reason starting ``too_many_walks``), so one device inventing walk ids cannot make the streaming
job hold unbounded per-walk state. The bridge's own memory is bounded the same way: at most
``max_per_subject`` entries per subject, and a subject with no open walk is forgotten.

::

    max_per_subject = 2, idle_seconds = 10
    t=0  A_01 ✓   t=1  A_02 ✓   t=2  A_03 ✗ (A_01, A_02 open)
    t=5  A_01 ✓ (refreshed)     t=12 A_03 ✓ (A_02 idle since t=1: closed; A_01 still open)
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class OpenWalks:
    """Distinct walk ids per subject within a sliding idle window (thread-safe)."""

    def __init__(self, max_per_subject: int, idle_seconds: float, clock: Callable[[], float] = time.monotonic):
        if max_per_subject < 1 or idle_seconds <= 0:
            raise ValueError("max_per_subject must be >= 1 and idle_seconds > 0")
        self.max_per_subject = max_per_subject
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._lock = threading.Lock()
        # subject -> walk -> last seen; each OrderedDict is kept oldest first.
        self._open: dict[str, OrderedDict[str, float]] = {}

    def admit(self, subject_id: str, walk_id: str) -> bool:
        """Record one message of ``walk_id``; False when it would open one walk too many."""
        now = self.clock()
        with self._lock:
            walks = self._open.get(subject_id)
            if walks is None:
                walks = self._open[subject_id] = OrderedDict()
            self._expire(walks, now)
            if walk_id in walks:
                walks.move_to_end(walk_id)
            elif len(walks) >= self.max_per_subject:
                return False
            walks[walk_id] = now
            return True

    def open_walks(self, subject_id: str) -> list[str]:
        """The subject's open walks, least recently seen first."""
        with self._lock:
            walks = self._open.get(subject_id)
            if walks is None:
                return []
            self._expire(walks, self.clock())
            return list(walks)

    def sweep(self) -> tuple[int, int]:
        """Close idle walks everywhere, forget subjects with none; returns (subjects, walks) still open."""
        now = self.clock()
        with self._lock:
            for subject_id in list(self._open):
                walks = self._open[subject_id]
                self._expire(walks, now)
                if not walks:
                    del self._open[subject_id]
            return len(self._open), sum(len(walks) for walks in self._open.values())

    def _expire(self, walks: OrderedDict[str, float], now: float) -> None:
        while walks:
            oldest, seen = next(iter(walks.items()))
            if now - seen < self.idle_seconds:
                break
            del walks[oldest]
