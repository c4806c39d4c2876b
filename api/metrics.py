"""A few Prometheus counters for GET /metrics (text exposition format, no client library needed)."""

from __future__ import annotations

import threading
from collections import Counter


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        self.diagnose_seconds = 0.0

    def inc(self, name: str, **labels: str) -> None:
        with self._lock:
            self.counts[(name, tuple(sorted(labels.items())))] += 1

    def observe_diagnose(self, seconds: float) -> None:
        with self._lock:
            self.diagnose_seconds += seconds

    def render(self, gauges: dict[str, float]) -> str:
        lines = []
        with self._lock:
            for (name, labels), value in sorted(self.counts.items()):
                label_text = ",".join(f'{k}="{v}"' for k, v in labels)
                lines.append(f"{name}{{{label_text}}} {value}")
            lines.append(f"gaitstream_api_diagnose_seconds_total {self.diagnose_seconds:.6f}")
        lines += [f"{name} {value}" for name, value in gauges.items()]
        return "\n".join(lines) + "\n"
