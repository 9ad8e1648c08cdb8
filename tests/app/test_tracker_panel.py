"""The tracker panel (T) shows the tracker's own picture: its last frame with the visitors'
pixels tinted, taken from the running tracker without waiting on it."""

from __future__ import annotations

import time

import numpy as np

from waterrock.app.overlay import FOREGROUND_TINT, tracker_picture
from waterrock.tracking.frame import Frame


def test_depth_picture_tints_the_foreground():
    depth = np.full((120, 160), 3000, np.uint16)
    depth[40:80, 60:100] = 1500  # someone nearer the camera
    depth[0:10, 0:10] = 0  # no reading
    mask = np.zeros((120, 160), bool)
    mask[40:80, 60:100] = True
    img = tracker_picture(Frame(0.0, depth=depth), mask, width=80)
    assert img.shape == (60, 80, 4) and img.dtype == np.uint8 and np.all(img[..., 3] == 255)
    person, floor, hole = img[30, 40, :3].astype(int), img[50, 10, :3].astype(int), img[1, 1, :3]
    np.testing.assert_allclose(person, 0.4 * 255 + 0.6 * FOREGROUND_TINT, atol=2)  # nearest: white, tinted
    assert floor[0] == floor[1] == floor[2] and 20 < floor[0] < 60  # far: dark grey, untinted
    assert not hole.any()


def test_colour_picture_is_rgb():
    bgr = np.zeros((48, 64, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's order
    img = tracker_picture(Frame(0.0, color=bgr), None, width=64)
    assert img.shape == (48, 64, 4) and np.all(img[..., 2] == 200) and not img[..., 0].any()


def test_runner_publishes_its_last_frame_and_mask():
    from waterrock.tracking.runner import TrackerRunner
    from waterrock.tracking.settings import TrackingSettings
    from waterrock.tracking.synthetic import SyntheticSource

    settings = TrackingSettings(background_frames=2)
    runner = TrackerRunner(lambda: SyntheticSource("walk", fps=60.0, realtime=True), settings)
    assert runner.latest_picture() is None
    with runner:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            picture = runner.latest_picture()
            if picture is not None and picture[1] is not None and picture[1].any():
                break
            time.sleep(0.05)
    frame, mask = picture
    assert frame.depth is not None and mask.shape == frame.depth.shape and mask.dtype == bool
    assert 0 < mask.mean() < 0.2  # the walker, not the room
