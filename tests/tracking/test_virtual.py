"""The mouse as a visitor: a cursor through an inverse view mapping becomes a moving obstacle."""

from __future__ import annotations

import numpy as np
import pytest

from waterrock.tracking.virtual import VIRTUAL_IDS, VirtualVisitor


def floor_from_pixels(x: float, y: float) -> np.ndarray:
    """A 1000 x 800 window looking straight down on 5 x 4 m of floor."""
    return np.array([(x - 500) / 200.0, 0.0, (y - 400) / 200.0])


def test_dragging_gives_position_and_velocity():
    v = VirtualVisitor(floor_from_pixels, radius=0.2, smoothing=1.0)
    v.press(500, 400, t=0.0)
    for i in range(1, 6):
        v.move(500 + 20 * i, 400, t=i / 60)  # 20 px per 1/60 s = 0.1 m / (1/60 s) = 6 m/s
    snap = v.snapshot(now=5 / 60)
    assert snap.ids.tolist() == [VIRTUAL_IDS]
    np.testing.assert_allclose(snap.a[0], [0.5, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(snap.a, snap.b)  # a sphere
    np.testing.assert_allclose(snap.velocity[0], [6.0, 0.0, 0.0], atol=1e-4)
    # the cursor stops: the water must not be pushed by a hand that is still
    assert np.allclose(v.snapshot(now=5 / 60 + 0.5).velocity, 0)


def test_capsule_release_fades_and_pointing_past_the_plane_is_ignored():
    v = VirtualVisitor(
        lambda x, y: np.array([np.nan] * 3) if y < 0 else floor_from_pixels(x, y), height=1.7, fade_time=0.2
    )
    assert len(v.snapshot(0.0)) == 0
    v.press(100, 100, t=0.0)
    v.move(100, -5, t=0.01)  # above the horizon
    snap = v.snapshot(0.01)
    np.testing.assert_allclose(snap.b[0] - snap.a[0], [0.0, 1.7, 0.0])
    np.testing.assert_allclose(snap.a[0], floor_from_pixels(100, 100))
    v.release(t=1.0)
    assert v.snapshot(1.1).weight[0] == pytest.approx(0.5)
    assert len(v.snapshot(1.25)) == 0


def test_jumps_are_clamped():
    v = VirtualVisitor(floor_from_pixels, smoothing=1.0, max_speed=3.0)
    v.press(0, 0, t=0.0)
    v.move(1000, 800, t=0.01)
    assert np.linalg.norm(v.snapshot(0.01).velocity[0]) == pytest.approx(3.0, rel=1e-5)
