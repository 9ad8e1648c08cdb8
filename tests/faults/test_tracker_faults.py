"""The tracker's runner against what a season of cameras delivers, each fault of issue 20 once: a
bad frame is skipped and counted (never a reopen of the healthy source), a wedged device is not
reopened into a new hung thread every few seconds, and any first frame may be bad."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from tests.tracking.conftest import ScriptedSource, empty_background
from tests.tracking.test_runner import Watcher, make_runner
from waterrock.tracking.frame import Frame
from waterrock.tracking.runner import ABANDONED_MAX, TrackerRunner
from waterrock.tracking.settings import TrackingSettings
from waterrock.tracking.sources import FrameSource
from waterrock.tracking.synthetic import SyntheticSource

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def walker():
    src = SyntheticSource("walk", loop=True)
    return src, empty_background(src)


def test_bad_frames_are_skipped_never_a_reconnect(walker):
    """A driver hands over whatever it has: nothing, a non-frame, a frame with a timestamp that is
    no number or an image of the wrong type. Each reopened the healthy source (a depth camera's
    reopen takes seconds, or fails); each is the frame's fault, skipped and counted. The first
    frame may be one of them."""
    src, bg = walker
    bad = {
        0: None,
        1: "not a frame",
        20: Frame(None, depth=np.ones((480, 640), np.uint16), index=20),
        21: Frame(21 / 30, depth=np.ones((480, 640), np.float64), index=21),
        22: Frame(22 / 30, depth=np.ones((480, 640), np.uint16).tolist(), index=22),
        23: object(),
    }
    source = ScriptedSource(src, corrupt=bad, frame_interval=1 / 120)
    with make_runner(source, bg) as runner:
        w = Watcher(runner)
        w.until(lambda: runner.state().frames + runner.state().skipped >= 40)
        st = runner.state()
    assert (st.skipped, st.reconnects, source.opened) == (len(bad), 0, 1), st
    assert st.last_error is None


def test_a_wedged_device_does_not_leak_a_thread_per_reopen(walker):
    """A device whose every read hangs was reopened each ``stall_reconnect``, and each reopen left
    a thread hung in its read for good: 1,200 an hour at 3 s. Hung reads are bounded."""
    src, bg = walker
    wedged = {i: 3600.0 for i in range(25, 2000)}  # from frame 25 on, every read hangs
    source = ScriptedSource(src, freeze_at=wedged, frame_interval=1 / 60)
    before = {t.ident for t in threading.enumerate()}
    try:
        with make_runner(source, bg, stall_reconnect=0.1, reconnect_initial=0.05) as runner:
            w = Watcher(runner)
            w.until(lambda: runner.state().frames >= 20)
            end = time.monotonic() + 30 * 0.1  # thirty stall_reconnects: today thirty threads
            while time.monotonic() < end:
                w.poll()
                time.sleep(0.02)
            threads = [t for t in threading.enumerate() if t.ident not in before]
            assert len(threads) <= ABANDONED_MAX + 2, [t.name for t in threads]  # + the watchdog, the worker
            assert source.opened <= ABANDONED_MAX + 1
            assert "wedged" in runner.state().last_error
    finally:
        source.release.set()  # let every hung read return


class ColourSource(FrameSource):
    """A colour camera whose first frame is empty (0 x 0), as some drivers deliver while the
    sensor starts, then an empty floor."""

    name = "colour"

    def __init__(self) -> None:
        self.opened = 0

    def __iter__(self) -> Iterator[Frame]:
        self.opened += 1
        yield Frame(0.0, color=np.zeros((0, 0, 3), np.uint8), index=0)
        floor = np.random.default_rng(0).integers(100, 160, (120, 160, 3), dtype=np.uint8)
        for i in range(1, 100_000):
            yield Frame(i / 30, color=floor, index=i)
            threading.Event().wait(1 / 120)


def test_an_empty_first_colour_frame_does_not_blind_the_colour_pipeline():
    """The colour pipeline took its image size from the empty first frame, and skipped every
    later frame as the wrong size until a restart."""
    source = ColourSource()
    runner = TrackerRunner(lambda: source, TrackingSettings(segmentation="color", reconnect_initial=0.05))
    with runner:
        Watcher(runner).until(lambda: runner.state().frames >= 20)
        st = runner.state()
    assert st.skipped == 1 and st.reconnects == 0 and source.opened == 1, st
