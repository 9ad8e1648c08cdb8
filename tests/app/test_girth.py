"""Visitors' girth in the water's time (app/girth.py): a new visitor grows in, a fading one
shrinks, no faster than GROWTH per second of water, whatever the wall clock does."""

from __future__ import annotations

import numpy as np
import pytest

from waterrock.app.girth import GROWTH, GirthInWaterTime
from waterrock.snapshots import ObstacleSnapshot

FRAME = 1.0 / 60.0


def sphere(radius: float = 0.2, weight: float = 1.0, oid: int = 7, x: float = 0.0) -> ObstacleSnapshot:
    return ObstacleSnapshot.spheres([[x, 0.5, 0.0]], [radius], velocities=[[1.0, 0.0, 0.0]], ids=[oid],
                                    weight=[weight])


def girth(snap: ObstacleSnapshot) -> float:
    return float((snap.radius * snap.weight)[0])


def test_a_new_visitor_grows_in_then_is_left_alone():
    g = GirthInWaterTime()
    sizes = [girth(g(sphere(), FRAME)) for _ in range(14)]
    assert sizes[0] == pytest.approx(GROWTH * FRAME)
    np.testing.assert_allclose(np.diff(sizes[:12]), GROWTH * FRAME, rtol=1e-5)
    assert sizes[-1] == pytest.approx(0.2)
    snap = sphere(x=0.3)
    out = g(snap, FRAME)
    assert out is snap  # grown: handed over as it is, place and velocity untouched


def test_a_fade_by_the_wall_clock_is_kept_to_the_waters_time():
    """A stalled tracker fades its visitor out over half a second of the clock; in water that
    runs at a tenth of real time that is a twentieth of a second of water, and back."""
    g = GirthInWaterTime()
    for _ in range(13):
        g(sphere(), FRAME)
    sizes = [girth(g(sphere(weight=w), FRAME)) for w in (0.6, 0.2, 0.0, 1.0, 1.0)]
    assert sizes == pytest.approx([0.2 - GROWTH * FRAME * k for k in (1, 2, 3)] + [0.2 - GROWTH * FRAME * 2,
                                                                                  0.2 - GROWTH * FRAME], abs=1e-6)


def test_visitors_are_followed_by_id_whatever_their_order():
    g = GirthInWaterTime()
    two = ObstacleSnapshot.spheres([[0.0, 0.5, 0.0], [1.0, 0.5, 0.0]], [0.1, 0.1], ids=[3, 9])
    for _ in range(8):
        g(two, FRAME)
    swapped = ObstacleSnapshot.spheres([[1.0, 0.5, 0.0], [0.0, 0.5, 0.0]], [0.1, 0.05], ids=[9, 3])
    out = g(swapped, FRAME)
    assert out.radius * out.weight == pytest.approx([0.1, 0.1 - GROWTH * FRAME])
    np.testing.assert_array_equal(out.a, swapped.a)
    assert len(g(ObstacleSnapshot.empty(), FRAME)) == 0
    assert girth(g(sphere(oid=3), FRAME)) == pytest.approx(GROWTH * FRAME)  # gone, then new again


def test_a_shrinking_radius_estimate_keeps_the_weight_within_0_and_1():
    """The girth may shrink no faster than GROWTH: where the tracker's radius estimate falls
    faster, the snapshot carries the girth as its radius, weight 1, and stays valid (a weight
    over 1 made the solver drop the visitor for the frame)."""
    g = GirthInWaterTime()
    for _ in range(13):
        g(sphere(radius=0.2), FRAME)
    out = g(sphere(radius=0.15), FRAME)
    assert girth(out) == pytest.approx(0.2 - GROWTH * FRAME)
    assert 0.0 <= out.weight[0] <= 1.0 and out.radius[0] == pytest.approx(0.2 - GROWTH * FRAME)
    assert out.problems() == []


def test_a_bad_radius_is_passed_on_for_the_solver_to_name_and_not_kept():
    g = GirthInWaterTime()
    for _ in range(13):
        g(sphere(), FRAME)
    bad = g(sphere(radius=float("nan")), FRAME)
    assert any("not finite" in p for p in bad.problems())
    after = g(sphere(), FRAME)
    assert np.isfinite(after.weight).all() and girth(after) == pytest.approx(GROWTH * FRAME)  # grows in again
