"""Recordings: whatever goes in comes back frame-identical, PNG folder and npz alike."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from waterrock.tracking.frame import Frame
from waterrock.tracking.record import record, record_command
from waterrock.tracking.sources import DepthRecordingSource, FrameSource, open_source
from waterrock.tracking.synthetic import SyntheticSource


class ColorAndDepth(FrameSource):
    """A synthetic RGB-D sensor: the depth, and a colour image made from it."""

    def __init__(self, n: int) -> None:
        self.inner = SyntheticSource("walk", loop=False, frames=n, camera=None)
        self.calibration = self.inner.calibration
        self.name = "rgbd"

    def __iter__(self) -> Iterator[Frame]:
        for f in self.inner:
            gray = cv2.convertScaleAbs(f.depth, alpha=255 / 6000)
            color = cv2.applyColorMap(gray, cv2.COLORMAP_JET)
            yield Frame(f.timestamp + 1234.5678901, color, f.depth, f.index)


@pytest.mark.parametrize("name", ["night", "night.npz"])
def test_recording_reads_back_frame_identical(tmp_path, name):
    original = list(ColorAndDepth(12))
    n = record(ColorAndDepth(12), tmp_path / name, frames=100)
    assert n == 12
    back = DepthRecordingSource(tmp_path / name, loop=False)
    replay = list(back)
    assert len(replay) == len(original) == len(back)
    for a, b in zip(original, replay, strict=True):
        assert a.timestamp == b.timestamp and a.index == b.index
        assert b.depth.dtype == np.uint16 and b.color.dtype == np.uint8
        np.testing.assert_array_equal(a.depth, b.depth)
        np.testing.assert_array_equal(a.color, b.color)
    cal = back.calibration
    np.testing.assert_allclose(cal.rotation, original_cal().rotation)
    np.testing.assert_allclose(cal.translation, original_cal().translation)


def original_cal():
    return SyntheticSource("walk", loop=False, frames=1).calibration


def test_recording_stops_after_frames_and_loops_with_time_running_on(tmp_path):
    record(SyntheticSource("walk", loop=False, frames=50), tmp_path / "r.npz", frames=5)
    src = open_source(tmp_path / "r.npz", loop=True)
    stamps = [f.timestamp for _, f in zip(range(12), src, strict=False)]
    assert len(stamps) == 12
    assert np.all(np.diff(stamps) > 0), "a looped recording never goes back in time"
    np.testing.assert_allclose(np.diff(stamps), 1 / 30, rtol=1e-9)


def test_record_command_records_for_seconds(tmp_path):
    n = record_command("synthetic:walk", tmp_path / "rec", seconds=0.4)
    assert 3 <= n <= 14  # paced at 30 fps for 0.4 s of wall clock
    src = open_source(f"depth:{tmp_path / 'rec'}", loop=False)
    frames = list(src)
    assert len(frames) == n and frames[0].depth.shape == (480, 640)
    assert sorted(p.name for p in (tmp_path / "rec").glob("depth_*.png"))[0] == "depth_000000.png"


def test_record_needs_a_limit(tmp_path):
    with pytest.raises(ValueError, match="seconds or frames"):
        record(SyntheticSource("walk"), tmp_path / "x.npz")
