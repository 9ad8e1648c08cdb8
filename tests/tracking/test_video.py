"""An overhead video of people crossing a floor: one track per walking person."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from waterrock.tracking.pipeline import ColorPipeline
from waterrock.tracking.settings import TrackingSettings
from waterrock.tracking.sources import open_source

W, H, FPS, FRAMES = 640, 480, 30, 120
# (row px, start x px, speed px/frame, half axes px): three dark coats walking across
WALKERS = [(110, -60, 6.0, (34, 24)), (250, W + 60, -5.0, (30, 26)), (380, -60, 7.5, (36, 22))]


def walker_x(w, i: int) -> float:
    return w[1] + w[2] * i


def write_video(path) -> None:
    rng = np.random.default_rng(0)
    floor = cv2.GaussianBlur(rng.integers(120, 220, (H, W, 3), dtype=np.uint8), (0, 0), 2.0)
    floor[::40, :] = 90  # floor tiles: texture that must not become people
    floor[:, ::40] = 90
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    assert writer.isOpened()
    for i in range(FRAMES):
        img = floor.copy()
        for k, w in enumerate(WALKERS):
            cv2.ellipse(img, (int(walker_x(w, i)), w[0]), w[3], 0, 0, 360, (25 + 10 * k, 30, 35), -1)
        writer.write(img)
    writer.release()


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "crossing.avi"
    write_video(path)
    return path


# the video's floor is empty for its first frames, while the walkers come in from the sides: the
# background is learned over those (the default, 2 s, would be half the video)
LEARN = 0.2


def test_one_track_per_walking_person(video):
    settings = TrackingSettings(
        source="video", path=video, floor_width=4.0, loop=False, realtime=False, background_seconds=LEARN
    )
    src = open_source(f"video:{video}", loop=False)
    pipe = ColorPipeline(settings)
    owner: dict[int, set[int]] = {}
    frames = 0
    full_view_counts = []
    for frame in src:
        frames += 1
        snap = pipe.process(frame)
        px = pipe.calibration.world_to_pixel(snap.a)
        for oid, (u, v) in zip(snap.ids, px, strict=True):
            rows = [abs(v - w[0]) for w in WALKERS]
            who = int(np.argmin(rows))
            assert rows[who] < 15, f"frame {frame.index}: obstacle at row {v:.0f} is nobody"
            x, half = walker_x(WALKERS[who], frame.index), WALKERS[who][3][0]
            # entering, the centroid is of the part in the picture, and outruns the walker; the
            # filter settles within a few frames of the whole coat being in view
            x_before = walker_x(WALKERS[who], frame.index - 8)
            if half < x < W - half and half < x_before < W - half:
                assert abs(u - x) < 5, f"frame {frame.index}: walker {who} at {x:.0f}, obstacle at {u:.0f}"
            owner.setdefault(int(oid), set()).add(who)
        inside = sum(60 < walker_x(w, frame.index) < W - 60 for w in WALKERS)
        if inside == 3 and frame.index > 5:
            full_view_counts.append(len(snap))
    assert frames == FRAMES
    assert sorted(min(s) for s in owner.values()) == [0, 1, 2], f"one track per walker, got {owner}"
    assert all(len(s) == 1 for s in owner.values())
    assert full_view_counts and min(full_view_counts) == 3


def test_velocity_from_video_matches_the_walk(video):
    settings = TrackingSettings(source="video", path=video, floor_width=4.0, background_seconds=LEARN)
    pipe = ColorPipeline(settings)
    speeds = {}
    for frame in open_source(f"video:{video}", loop=False):
        snap = pipe.process(frame)
        if frame.index == 60:
            speeds = {int(i): v for i, v in zip(snap.ids, snap.velocity, strict=True)}
    metres_per_px = 4.0 / W
    expected = sorted(w[2] * FPS * metres_per_px for w in WALKERS)
    got = sorted(float(v[0]) for v in speeds.values())
    np.testing.assert_allclose(got, expected, atol=0.08)
