"""Progress of a long step: units of work done out of a total, and the time left.

Every progress line of the suite ends in an ETA written by ``eta_text`` (``python -m ciess.logs``
finds a running job's progress by that word). ``Progress`` holds the count and the clock for a
loop whose units take about the same time: the ETA is the mean time per unit done so far (in this
process: units restored from a checkpoint do not count) times the units left.
"""
from __future__ import annotations

import time


def eta_text(seconds: float) -> str:
    """Seconds left as 1h05m or 4m07s, for progress lines."""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s"


class Progress:
    """``total`` units, ``done`` of them finished before this process started counting."""

    def __init__(self, total: int, done: int = 0):
        if total < 0 or not 0 <= done <= total:
            raise ValueError(f"progress: need 0 <= done <= total, got done={done}, total={total}")
        self.total, self.done, self._done_before = total, done, done
        self._started = time.perf_counter()

    def advance(self, units: int = 1) -> None:
        self.done = min(self.total, self.done + units)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self._started

    def eta(self) -> str:
        """Time left, or "unknown" before the first unit of this process has finished."""
        ran = self.done - self._done_before
        if ran == 0:
            return "unknown"
        return eta_text(self.elapsed_s / ran * (self.total - self.done))
