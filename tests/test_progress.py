"""The ETA every progress line ends in (ciess/progress.py)."""
import pytest

from ciess import progress as progress_module
from ciess.progress import Progress, eta_text


def test_eta_text_writes_minutes_or_hours():
    assert eta_text(247) == "4m07s"
    assert eta_text(3900) == "1h05m"
    assert eta_text(0) == "0m00s"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_eta_is_the_mean_time_per_unit_times_the_units_left(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress_module.time, "perf_counter", clock)
    p = Progress(10)
    assert p.eta() == "unknown"  # nothing finished yet: no rate to extrapolate
    clock.now += 60
    p.advance(2)  # 30 s per unit, 8 left
    assert (p.done, p.eta()) == (2, "4m00s")
    clock.now += 240
    p.advance(8)
    assert (p.done, p.eta()) == (10, "0m00s")
    p.advance()  # never past the total
    assert p.done == 10


def test_units_restored_from_a_checkpoint_do_not_count_in_the_rate(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress_module.time, "perf_counter", clock)
    p = Progress(100, done=90)  # a resumed search: 90 of 100 done before this process
    assert p.eta() == "unknown"
    clock.now += 10
    p.advance()  # 10 s for the one unit of this process, 9 left
    assert p.eta() == "1m30s"


@pytest.mark.parametrize("total, done", [(-1, 0), (5, 6), (5, -1)])
def test_impossible_counts_are_refused(total, done):
    with pytest.raises(ValueError, match="done"):
        Progress(total, done=done)
