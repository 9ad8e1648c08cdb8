"""The runner: a failing, freezing or corrupt source never blocks the water, and recovers."""

from __future__ import annotations

import ctypes
import logging
import time

import numpy as np
import pytest

from tests.tracking.conftest import ScriptedSource, empty_background
from waterrock.tracking.frame import Frame
from waterrock.tracking.pipeline import DepthPipeline
from waterrock.tracking.runner import LATE_AFTER, TrackerRunner
from waterrock.tracking.settings import TrackingSettings
from waterrock.tracking.synthetic import SyntheticSource

# latest() never waits on the source: a wait would last the whole outage (0.8 s frozen, 0.5 s
# before a reopen, an hour hung). The bound is not a speed: on a loaded 2-core CI machine the
# tracker's thread holds the GIL for some milliseconds now and then.
NEVER_WAITED = 0.1


class Watcher:
    """Polls latest() as the frame loop would, timing every call and keeping what it saw."""

    def __init__(self, runner: TrackerRunner) -> None:
        self.runner = runner
        self.slowest = 0.0
        self.seen: list[tuple[str, int, float]] = []  # status, obstacles, smallest weight

    def poll(self) -> None:
        t = time.perf_counter()
        snap = self.runner.latest()
        self.slowest = max(self.slowest, time.perf_counter() - t)
        st = self.runner.state()
        self.seen.append((st.status, len(snap), float(snap.weight.min()) if len(snap) else 0.0))

    def until(self, cond, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.poll()
            if cond():
                return
            time.sleep(0.005)
        raise AssertionError(f"timed out; last states {self.seen[-5:]}")

    def faded(self) -> bool:
        return any(0.0 < w < 0.9 and st != "running" for st, _, w in self.seen)


@pytest.fixture
def walker():
    src = SyntheticSource("walk", loop=True)
    return src, empty_background(src)


def make_runner(source: ScriptedSource, bg, pipeline=DepthPipeline, **kw) -> TrackerRunner:
    settings = TrackingSettings(**{"stall_timeout": 0.1, "fade_time": 0.3, "reconnect_initial": 0.5, **kw})
    return TrackerRunner(
        lambda: source,
        settings,
        pipeline_factory=lambda frame, src: pipeline(settings, src.calibration, bg),
    )


def test_source_that_raises_fades_then_recovers(walker):
    src, bg = walker
    source = ScriptedSource(src, raise_at={30}, frame_interval=1 / 60)
    with make_runner(source, bg) as runner:
        w = Watcher(runner)
        w.until(lambda: len(runner.latest()) == 1 and runner.state().frames > 20)
        w.until(lambda: runner.state().status == "reconnecting")
        w.until(lambda: len(runner.latest()) == 0)  # faded out while the cable was out
        w.until(lambda: runner.state().status == "running" and len(runner.latest()) == 1)
        st = runner.state()
    assert w.faded(), "obstacles must fade (0 < weight < 1) before they vanish"
    assert source.opened == 2 and st.reconnects == 1
    assert "cable pulled at frame 30" in st.last_error
    assert w.slowest < NEVER_WAITED, f"latest() took {w.slowest * 1000:.1f} ms"
    assert runner.state().status == "stopped"


def test_frozen_source_fades_and_comes_back_without_reopening(walker):
    src, bg = walker
    source = ScriptedSource(src, freeze_at={30: 0.8}, frame_interval=1 / 60)
    with make_runner(source, bg, stall_reconnect=5.0) as runner:
        w = Watcher(runner)
        w.until(lambda: runner.state().frames >= 25 and len(runner.latest()) == 1)
        w.until(lambda: runner.state().status == "stalled")
        w.until(lambda: len(runner.latest()) == 0)
        w.until(lambda: runner.state().status == "running" and len(runner.latest()) == 1)
    assert w.faded()
    assert source.opened == 1
    assert w.slowest < NEVER_WAITED


def test_slow_source_is_held_between_frames_and_fades_when_late(walker):
    """A tracker at 5 fps (a loaded 2-core machine runs it at 2 to 4) is not 'stalled' between
    two of its frames, nor are its visitors faded; when its frames stop, they fade as a fast
    source's do, after LATE_AFTER of its intervals."""
    src, bg = walker
    source = ScriptedSource(src, freeze_at={16: 1.2}, frame_interval=0.2)
    with make_runner(source, bg) as runner:  # stall_timeout 0.1 s
        w = Watcher(runner)
        w.until(lambda: runner.state().frames >= 6 and len(runner.latest()) == 1)
        assert runner.stall_after == pytest.approx(LATE_AFTER * 0.2, rel=0.5)
        steady = len(w.seen)
        w.until(lambda: runner.state().frames >= 12)
        held = w.seen[steady:]
        w.until(lambda: runner.state().status == "stalled")
        w.until(lambda: len(runner.latest()) == 0)
        w.until(lambda: runner.state().status == "running" and len(runner.latest()) == 1)
    assert len(held) > 100
    assert {status for status, _, _ in held} == {"running"}
    assert min(weight for _, _, weight in held) > 0.99, "faded between two frames of a steady source"
    assert w.faded()
    assert source.opened == 1


def test_hung_source_is_abandoned_and_reopened(walker):
    src, bg = walker
    source = ScriptedSource(src, freeze_at={30: 3600.0}, frame_interval=1 / 60)
    try:
        with make_runner(source, bg, stall_reconnect=0.5) as runner:
            w = Watcher(runner)
            w.until(lambda: runner.state().frames >= 25)
            w.until(lambda: source.opened == 2)
            w.until(lambda: runner.state().status == "running" and len(runner.latest()) == 1)
            assert "reopening" in runner.state().last_error
        assert w.slowest < NEVER_WAITED
    finally:
        source.release.set()  # let the abandoned worker's read return, so its thread ends


def test_corrupt_frames_are_skipped_counted_and_warned(walker, caplog):
    src, bg = walker
    bad = {
        20: Frame(20 / 30, depth=np.zeros((480, 640), np.uint16), index=20),
        21: Frame(21 / 30, depth=np.full((480, 640), np.nan, np.float32), index=21),
        22: Frame(22 / 30, depth=np.ones((100, 100), np.uint16), index=22),
        23: Frame(23 / 30, color=np.ones((480, 640), np.float64), index=23),
    }
    source = ScriptedSource(src, corrupt=bad)
    ids_before = []
    with caplog.at_level(logging.WARNING, logger="waterrock.tracking.runner"):
        with make_runner(source, bg) as runner:
            w = Watcher(runner)
            w.until(lambda: runner.state().frames >= 15)
            ids_before = runner.latest().ids.tolist()
            w.until(lambda: runner.state().frames + runner.state().skipped >= 50)
            st = runner.state()
            ids_after = runner.latest().ids.tolist()
    assert st.skipped == 4
    assert st.reconnects == 0 and st.last_error is None
    assert ids_before == ids_after == [1], "the person keeps their track through bad frames"
    warnings = [r for r in caplog.records if "corrupt" in r.getMessage()]
    assert 1 <= len(warnings) < 4, "warned, but rate-limited"
    assert st.fps > 0 and st.latency_ms > 0


def test_latest_before_any_frame_is_empty_and_immediate():
    runner = TrackerRunner(lambda: SyntheticSource("walk"), TrackingSettings())
    t = time.perf_counter()
    assert len(runner.latest()) == 0
    assert time.perf_counter() - t < 0.005
    assert runner.state().status == "stopped"


def hold_the_gil(hold_s: float, total_s: float, gap_s: float) -> None:
    """C calls that keep the GIL (as a kernel compile's steps, or a frame loop's rendering, do),
    ``hold_s`` each, with ``gap_s`` let go between them, for ``total_s`` in all."""
    hold = ctypes.PyDLL(None).usleep
    end = time.monotonic() + total_s
    while time.monotonic() < end:
        hold(int(hold_s * 1e6))
        time.sleep(gap_s)


def assert_not_reopened(walker, disturb=lambda: None, **kw) -> None:
    """A healthy source, read at 60 fps with stall_reconnect 0.5 s, through ``disturb()``: its
    frames come on afterwards and it is never reopened."""
    src, bg = walker
    source = ScriptedSource(src, frame_interval=1 / 60)
    with make_runner(source, bg, stall_reconnect=0.5, **kw) as runner:
        w = Watcher(runner)
        w.until(lambda: runner.state().frames >= 25)
        frames = runner.state().frames
        disturb()
        w.until(lambda: runner.state().frames >= frames + 25)
    assert source.opened == 1, runner.state()
    assert "reopening" not in (runner.state().last_error or "")


def test_a_pause_of_the_whole_process_is_not_the_sources_stall(walker):
    """A kernel compile holds the GIL for seconds at start-up on a small machine (the first run
    after an install compiles every kernel): every thread stops, the watchdog too. The source
    did not stall, so it is not reopened (a depth camera reopened at start-up can take seconds,
    or fail)."""
    assert_not_reopened(walker, lambda: hold_the_gil(0.3, 1.8, 0.002))


def test_a_starved_worker_is_not_the_sources_stall(walker):
    """A slow frame loop (software rendering, a heavy solver) holds the GIL in C calls of tens of
    milliseconds, one after another: the worker gets the GIL only now and then and its frames
    come seconds apart, though the source is fine. Each hold is shorter than a look's interval
    twice over, so no single late look shows it; the watchdog counts every late look."""
    assert_not_reopened(walker, lambda: hold_the_gil(0.08, 2.0, 0.0005))


def test_a_long_frame_is_not_the_sources_stall(walker):
    """Learning the background takes the worker a second or more once; the source was read on
    time and is not reopened for what the worker did with its frame."""

    class SlowOnce(DepthPipeline):
        def process(self, frame):
            if frame.index == 10:
                time.sleep(1.5)
            return super().process(frame)

    assert_not_reopened(walker, pipeline=SlowOnce)
