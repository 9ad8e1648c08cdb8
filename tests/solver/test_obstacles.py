"""A visitor crossing the water at 5 m/s displaces it and gives it its velocity."""

import numpy as np
import pytest

from tests.solver.conftest import make_scene
from waterrock.snapshots import ObstacleSnapshot
from waterrock.solver.solver import Solver


@pytest.mark.parametrize("method", ["pbf", "dfsph"])
def test_moving_obstacle_pushes_the_water(method):
    scene = make_scene(
        domain={"lower": [0, 0, 0], "upper": [0.8, 0.4, 0.3]},
        fluid={"particle_radius": 0.01, "max_particles": 8000,
               "blocks": [{"lower": [0, 0, 0], "upper": [0.8, 0.1, 0.3]}]},
        solver={"method": method, "frame_rate": 100, "substeps": 2},
    )
    s = Solver(scene, arch="cpu")
    for _ in range(20):
        s.step()
    before = s.snapshot()
    speed, radius = 5.0, 0.06
    x0 = 0.1
    for k in range(10):  # crosses from x = 0.1 to 0.6 in 0.1 s
        c = [x0 + speed * k * 0.01, 0.06, 0.15]
        s.set_obstacles(ObstacleSnapshot.spheres([c], radius, velocities=[[speed, 0, 0]]))
        s.step()
    end = [c[0] + speed * 0.01, c[1], c[2]]  # it moves on with its velocity through the frame
    after = s.snapshot()
    x, v = after.positions, after.velocities
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(v))
    assert np.linalg.norm(v, axis=1).max() < 3 * speed  # bounded
    # nothing inside the obstacle where it stands now
    assert np.linalg.norm(x - end, axis=1).min() > radius
    # the water just ahead of it is pushed along +x
    ahead = (np.abs(x[:, 0] - (end[0] + radius + 0.02)) < 0.03) & (np.abs(x[:, 2] - 0.15) < 0.05)
    assert ahead.sum() > 5
    assert v[ahead, 0].mean() > 0.5
    # the path is cleared compared with before
    path = lambda p: (np.abs(p[:, 2] - 0.15) < 0.04) & (p[:, 0] > 0.25) & (p[:, 0] < 0.45) & (p[:, 1] < 0.09)  # noqa: E731
    assert path(after.positions).sum() < 0.7 * path(before.positions).sum()


def _pool(method="pbf", **solver):
    scene = make_scene(
        domain={"lower": [0, 0, 0], "upper": [0.4, 0.3, 0.4]},
        fluid={"particle_radius": 0.01, "max_particles": 4000,
               "blocks": [{"lower": [0, 0, 0], "upper": [0.4, 0.08, 0.4]}]},
        solver={"method": method, **solver},
    )
    return Solver(scene, arch="cpu")


def test_pbf_keeps_real_time_when_the_cfl_condition_asks_for_more_substeps():
    s = _pool(substeps=1, max_substeps=2, cfl=0.4)
    s.state.v.from_numpy(np.tile(np.float32([3.0, 0.0, 0.0]), (s.state.capacity, 1)))
    s.step()  # the max speed is measured once per frame
    stats = s.step(1 / 60)
    assert stats["substeps"] == 2 and stats["dt"] == pytest.approx(1 / 120)
    assert s.time == pytest.approx(2 / 60)
    # every particle stayed within half a support radius per substep
    assert stats["max_speed"] <= 0.5 * s.h * 120 * 1.0001
    # DFSPH instead keeps its substeps CFL-stable, and its water runs slower
    d = _pool("dfsph", substeps=1, max_substeps=2, cfl=0.4)
    d.state.v.from_numpy(np.tile(np.float32([3.0, 0.0, 0.0]), (d.state.capacity, 1)))
    d.step()
    stats = d.step(1 / 60)
    assert stats["substeps"] == 2 and stats["dt"] < 1 / 120


@pytest.mark.parametrize("method", ["pbf", "dfsph"])
def test_a_visitor_never_pushes_water_into_a_solid(method):
    """A foot stamped through a pool into the floor: the water under it has nowhere to go, and
    the solid wins over the visitor: no particle ends up in the floor, whatever the foot does."""
    s = _pool(method, substeps=2)
    for _ in range(5):
        s.step()
    R, speed = 0.06, 2.0
    for k in range(8):  # from 0.15 m down to 0.03 m: half the foot below the floor
        y = max(0.15 - speed * k / 60, 0.03)
        s.set_obstacles(ObstacleSnapshot.spheres([[0.2, y, 0.2]], R, velocities=[[0, -speed, 0]]))
        s.step()
        y_min = s.snapshot().positions[:, 1].min()
        assert y_min >= 0.99 * s.boundary.contact, f"frame {k}: water {-y_min:.4f} m inside the floor"


def test_a_visitor_over_the_source_blocks_it_instead_of_packing_water_onto_itself():
    """A sphere over one half of a rectangular opening (0.1 m along x by 0.2 m along z): that half
    emits nothing while it is there (counted as blocked), no particle is placed within its reach,
    and the other half goes on."""
    scene = make_scene(
        domain={"lower": [0, 0, 0], "upper": [0.4, 0.5, 0.4]},
        fluid={"particle_radius": 0.01, "max_particles": 4000},
        emitters=[{"shape": "rect", "center": [0.2, 0.4, 0.2], "direction": [0, -1, 0],
                   "size": [0.2, 0.1], "speed": 1.0}],
        solver={"method": "dfsph", "substeps": 2},
    )
    R, centre = 0.1, [0.2, 0.4, 0.3]
    emitted = {}
    for covered in (False, True):
        s = Solver(scene, arch="cpu")
        s.step()
        if covered:
            s.set_obstacles(ObstacleSnapshot.spheres([centre], R))
        before = s.snapshot().ids
        stats = [s.step() for _ in range(6)]
        emitted[covered] = sum(st["emitted"] for st in stats)
        blocked = sum(st["blocked"] for st in stats)
        assert (blocked > 0) == covered
    assert 0.25 * emitted[False] < emitted[True] < 0.75 * emitted[False]  # about half the opening
    snap = s.snapshot()
    new = ~np.isin(snap.ids, before)
    reach = R + 2 * s.boundary.contact
    dist = np.linalg.norm(snap.positions[new] - centre, axis=1)
    assert dist.min() > reach
    assert np.all(np.linalg.norm(snap.velocities, axis=1) < 3.0)
