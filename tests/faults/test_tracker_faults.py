"""The tracker's runner against what a season of cameras delivers, each fault of issue 20 once: a
bad frame is skipped and counted (never a reopen of the healthy source), a wedged device is not
reopened into a new hung thread every few seconds, and any first frame may be bad."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from tests.tracking.conftest import ScriptedSource, empty_background
from tests.tracking.test_runner import Watcher, make_runner
from waterrock.tracking.frame import Frame
from waterrock.tracking.pipeline import NEW_SIZE_FRAMES
from waterrock.tracking.runner import ABANDONED_MAX, TrackerRunner
from waterrock.tracking.segment import DepthBackground
from waterrock.tracking.settings import TrackingSettings
from waterrock.tracking.sources import FrameSource
from waterrock.tracking.synthetic import SyntheticScript, SyntheticSource, overhead_camera

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


def _empty_room(width: int, height: int) -> SyntheticSource:
    return SyntheticSource(SyntheticScript((), 1.0), camera=overhead_camera(width, height), loop=True, seed=3)


class Cameras(FrameSource):
    """Depth frames of one synthetic camera after another on one clock: ``plan`` is (frames,
    camera) pairs, the last one played on for good. The calibration is the last camera's."""

    name = "cameras"

    def __init__(self, *plan: tuple[int, SyntheticSource]) -> None:
        self.plan = plan
        self.calibration = plan[-1][1].calibration
        self.opened = 0

    def __iter__(self) -> Iterator[Frame]:
        self.opened += 1
        i = 0
        for k, (count, camera) in enumerate(self.plan):
            last = k == len(self.plan) - 1
            for j in itertools.count() if last else range(count):
                yield Frame(i / 30, depth=camera.render(j), index=i)
                i += 1
                threading.Event().wait(1 / 120)


def _runner(source: FrameSource, **kw) -> TrackerRunner:
    return TrackerRunner(lambda: source, TrackingSettings(background_frames=10, reconnect_initial=0.05, **kw))


def test_a_first_depth_frame_of_another_size_does_not_blind_background_learning():
    """One 160 x 120 first frame (a driver still settling) went into the background being
    learned with the 640 x 480 ones after it: learning failed on every later frame, for good,
    and nobody was ever seen. A size change while learning starts the learning over."""
    source = Cameras((1, _empty_room(160, 120)), (12, _empty_room(640, 480)), (0, SyntheticSource("walk", loop=True)))
    with _runner(source) as runner:
        Watcher(runner).until(lambda: len(runner.latest()) == 1 and runner.state().frames > 30)
        st = runner.state()
        shape = runner.pipeline.background.shape
    assert (st.skipped, st.reconnects, source.opened, shape) == (0, 0, 1, (480, 640)), st


@pytest.mark.parametrize("change", ["saved background", "camera replaced"])
def test_a_background_of_another_size_than_the_camera_is_relearned(tmp_path, caplog, change):
    """A background of another size than the camera's frames (saved at 320 x 240 for a 640 x 480
    camera, or learned at 640 x 480 before the camera was replaced by a 320 x 240 one) made every
    frame a skipped 'corrupt' one, for good. Now a size that holds is taken: the background is
    relearned at it, in one warning naming both sizes (besides the runner's line for the frames
    skipped until then), and saved at it."""
    path = tmp_path / "background.npz"
    walk = SyntheticSource("walk", loop=True)
    if change == "saved background":
        DepthBackground.learn([_empty_room(320, 240).render(i) for i in range(8)]).save(path)
        source = Cameras((15, _empty_room(640, 480)), (0, walk))
    else:
        walk = SyntheticSource("walk", camera=overhead_camera(320, 240), loop=True)
        source = Cameras((15, _empty_room(640, 480)), (15, _empty_room(320, 240)), (0, walk))
    size = (walk.calibration.intrinsics.height, walk.calibration.intrinsics.width)
    caplog.set_level(logging.WARNING, logger="waterrock.tracking.pipeline")
    with _runner(source, background_file=path) as runner:

        def seen_at_the_new_size() -> bool:
            return len(runner.latest()) == 1 and getattr(runner.pipeline.background, "shape", None) == size

        Watcher(runner).until(seen_at_the_new_size)
        st = runner.state()
    said = [r.getMessage() for r in caplog.records if r.name == "waterrock.tracking.pipeline"]
    assert len(said) == 1 and "640x480" in said[0] and "320x240" in said[0], said
    assert st.skipped <= NEW_SIZE_FRAMES and st.reconnects == 0, st
    assert DepthBackground.load(path).shape == size


class Resized(ColourSource):
    """A colour camera whose first frame is 160 x 120, then 320 x 240 for good."""

    def __iter__(self) -> Iterator[Frame]:
        self.opened += 1
        rng = np.random.default_rng(0)
        yield Frame(0.0, color=rng.integers(100, 160, (120, 160, 3), dtype=np.uint8), index=0)
        floor = rng.integers(100, 160, (240, 320, 3), dtype=np.uint8)
        for i in range(1, 100_000):
            yield Frame(i / 30, color=floor, index=i)
            threading.Event().wait(1 / 120)


def test_the_colour_pipeline_takes_a_new_size_that_holds():
    """The colour pipeline kept the size of its first frame and skipped every later frame of
    another size until a restart. Now it rebuilds its background model at a size that holds."""
    source = Resized()
    runner = TrackerRunner(lambda: source, TrackingSettings(segmentation="color", reconnect_initial=0.05))
    with runner:
        Watcher(runner).until(lambda: runner.state().frames >= 20)
        st = runner.state()
        mask = runner.pipeline.foreground()
    assert st.skipped <= NEW_SIZE_FRAMES and st.reconnects == 0 and source.opened == 1, st
    assert mask.shape == (240, 320) and runner.pipeline.calibration.width == 320
