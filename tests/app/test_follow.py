"""Visitors in the water's time (app/follow.py): unchanged while the water keeps up with the
clock, lagging instead of jumping when it falls behind, and growing into the water gradually."""

from __future__ import annotations

import numpy as np
import pytest

from waterrock.app.follow import GROWTH, MARGIN, PACE, STALE, WaterTimeFollower
from waterrock.snapshots import ObstacleSnapshot

FRAME = 1.0 / 60.0


def sphere(x: float, radius: float = 0.2, vx: float = 1.0, weight: float = 1.0, oid: int = 7) -> ObstacleSnapshot:
    return ObstacleSnapshot.spheres([[x, 0.5, 0.0]], [radius], velocities=[[vx, 0.0, 0.0]], ids=[oid],
                                    weight=[weight])


def grown(follow: WaterTimeFollower, snap: ObstacleSnapshot, wall: float) -> ObstacleSnapshot:
    """Feed the first sighting until the visitor has grown to full size (GROWTH)."""
    out = snap
    for k in range(int(np.ceil(snap.radius.max() / (GROWTH * FRAME))) + 1):
        out = follow(snap, FRAME, wall + k * FRAME)
    return out


@pytest.mark.parametrize("vx, reported", [(1.0, True), (2.5, False)])
def test_a_visitor_is_left_alone_while_the_water_keeps_up(vx, reported):
    """Real time: one frame of water per frame of the clock. A sphere that reports no velocity
    (an OSC client may not) is judged by how fast it moved: one that sets off at a run after
    standing still falls a few centimetres behind and is caught up within a quarter second."""
    f = WaterTimeFollower()
    wall = 0.0
    grown(f, sphere(0.0, vx=vx if reported else 0.0), wall)
    for k in range(120):
        wall = 1.0 + k * FRAME
        snap = sphere(vx * k * FRAME, vx=vx if reported else 0.0)
        out = f(snap, FRAME, wall)
        if reported or k >= 15:
            np.testing.assert_array_equal(out.a, snap.a)
        else:
            assert f.lag < 0.03
        np.testing.assert_array_equal(out.radius * out.weight, snap.radius * snap.weight)
    assert f.lag == 0.0


def test_a_visitor_lags_in_slow_water_and_catches_up_when_they_stop():
    """The water at a twelfth of real time: a frame of water per 0.2 s of the clock. The shape
    moves at most MARGIN times the visitor's speed in the water's time, never jumps, and
    reaches the visitor once they stand still."""
    f = WaterTimeFollower()
    grown(f, sphere(0.0), 0.0)
    wall, x, shape = 1.0, 0.0, 0.0
    for _ in range(10):  # walking at 1 m/s: 0.2 m a frame of water, by the clock
        wall += 0.2
        x += 0.2
        out = f(sphere(x), FRAME, wall)
        step = out.a[0, 0] - shape
        assert 0.0 < step <= MARGIN * 1.0 * FRAME + 1e-6
        shape = out.a[0, 0]
    assert f.lag == pytest.approx(x - shape, abs=1e-5) and f.lag > 1.5
    for _ in range(400):  # standing still: the velocity the track reports falls to 0, PACE catches up
        wall += 0.2
        out = f(sphere(x, vx=0.0), FRAME, wall)
        assert out.a[0, 0] >= shape - 1e-6
        shape = out.a[0, 0]
        if f.lag == 0.0:
            break
    assert f.lag == 0.0 and out.a[0, 0] == pytest.approx(x)


def test_a_starved_tracker_moving_its_visitors_now_and_then_does_not_make_them_jump():
    """A tracker at 3 frames a second under a loop at 60, its visitor running at 2 m/s and
    reporting no velocity: it moves 0.67 m at once, and the speed taken from that move is over
    the time since the last one (up to STALE), not over a frame; the shape keeps that pace
    between moves."""
    f = WaterTimeFollower()
    grown(f, sphere(0.0, vx=0.0), 0.0)
    wall, x, shape = 1.0, 0.0, 0.0
    for k in range(180):
        wall += FRAME
        if k % 20 == 19:
            x += 2.0 / 3.0
        out = f(sphere(x, vx=0.0), FRAME, wall)
        assert out.a[0, 0] - shape <= MARGIN * max((2.0 / 3.0) / STALE, PACE) * FRAME + 1e-6  # not 0.67 m at once
        shape = out.a[0, 0]
    assert f.lag < 0.67  # a move behind at most


def test_a_visitor_grows_into_the_water_and_shrinks_no_faster():
    f = WaterTimeFollower()
    sizes = []
    for k in range(3):
        out = f(sphere(0.0, vx=0.0), FRAME, k * FRAME)
        sizes.append(float((out.radius * out.weight)[0]))
    assert sizes[0] == pytest.approx(GROWTH * FRAME)
    assert np.all(np.diff(sizes) <= GROWTH * FRAME + 1e-6)
    out = grown(f, sphere(0.0, vx=0.0), 1.0)
    assert (out.radius * out.weight)[0] == pytest.approx(0.2)
    out = f(sphere(0.0, vx=0.0, weight=0.25), FRAME, 2.0)  # the track is lost: it fades out
    assert (out.radius * out.weight)[0] == pytest.approx(0.2 - GROWTH * FRAME)
    out = f(sphere(0.0, vx=0.0, weight=1.0), FRAME, 2.0 + FRAME)  # and back
    assert (out.radius * out.weight)[0] == pytest.approx(0.2)


def test_visitors_are_followed_by_id_whatever_their_order():
    f = WaterTimeFollower()
    two = ObstacleSnapshot.spheres([[0.0, 0.5, 0.0], [1.0, 0.5, 0.0]], [0.1, 0.1], velocities=[[0, 0, 0]] * 2,
                                   ids=[3, 9])
    grown(f, two, 0.0)
    swapped = ObstacleSnapshot.spheres([[1.0, 0.5, 0.0], [0.0, 0.5, 0.0]], [0.1, 0.1], velocities=[[0, 0, 0]] * 2,
                                       ids=[9, 3])
    out = f(swapped, FRAME, 1.0)
    np.testing.assert_array_equal(out.a, swapped.a)
    assert f.lag == 0.0
    assert len(f(ObstacleSnapshot.empty(), FRAME, 1.1)) == 0 and f.lag == 0.0
