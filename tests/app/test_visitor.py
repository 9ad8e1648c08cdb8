"""A scripted visitor moving across the waterfall pushes the water out of its path: the same
scene and seed, stepped through the frame loop with and without the visitor."""

from __future__ import annotations

import numpy as np

from waterrock.app.loop import FrameLoop, Obstacles
from waterrock.scene import parse_scene
from waterrock.snapshots import ObstacleSnapshot

# A sheet of water 0.4 m wide (x) falling from y = 1.0 to a sink at the floor; no rock.
SHEET = {
    "name": "sheet",
    "domain": {"lower": [-0.5, 0.0, -0.15], "upper": [0.5, 1.1, 0.15]},
    "fluid": {"particle_radius": 0.015, "max_particles": 2500},
    "emitters": [{"shape": "rect", "center": [0.0, 1.0, 0.0], "size": [0.1, 0.4], "speed": 1.0}],
    "sinks": [{"lower": [-0.5, 0.0, -0.15], "upper": [0.5, 0.06, 0.15]}],
    "solver": {"method": "pbf", "frame_rate": 30.0, "time_step": 0.01, "seed": 3},
    "tracking": {"source": "none"},
}
PATH_Y, RADIUS, SPEED = 0.45, 0.1, 1.2  # the visitor crosses at this height
T_ENTER = 0.7  # s: the sheet has reached the floor by then
X0, X1 = -0.45, 0.45


def visitor_center(t: float) -> np.ndarray | None:
    x = X0 + SPEED * (t - T_ENTER)
    if t < T_ENTER or x > X1:
        return None
    return np.array([x, PATH_Y, 0.0])


class ScriptedVisitor:
    def __init__(self, solver):
        self.solver = solver

    def latest(self) -> ObstacleSnapshot:
        c = visitor_center(self.solver.time)
        if c is None:
            return ObstacleSnapshot.empty()
        return ObstacleSnapshot.spheres([c], RADIUS, velocities=[[SPEED, 0.0, 0.0]])


def simulate(with_visitor: bool) -> tuple[list[int], list[int]]:
    """Particles inside the visitor's sphere, and in the sheet just under it, per frame."""
    from waterrock.solver.solver import Solver

    solver = Solver(parse_scene(SHEET), arch="cpu")
    obstacles = Obstacles([ScriptedVisitor(solver)] if with_visitor else [])
    loop = FrameLoop(solver, obstacles, None, realtime=False)
    inside, shadow = [], []
    while solver.time < T_ENTER + (X1 - X0) / SPEED:
        c = visitor_center(solver.time)
        loop.tick()
        if c is None:
            continue
        x = solver.snapshot().positions
        inside.append(int(np.sum(np.linalg.norm(x - c, axis=1) < 0.9 * RADIUS)))
        # under the visitor: the falling sheet is cut, a shadow of dry space below the sphere
        below = (
            (np.abs(x[:, 0] - c[0]) < 0.6 * RADIUS)
            & (x[:, 1] < c[1] - RADIUS)
            & (x[:, 1] > c[1] - 3 * RADIUS)
        )
        shadow.append(int(np.sum(below)))
    return inside, shadow


def test_visitor_displaces_the_water_along_its_path():
    inside_free, shadow_free = simulate(with_visitor=False)
    inside_vis, shadow_vis = simulate(with_visitor=True)
    assert len(inside_free) == len(inside_vis) > 10
    # without a visitor the sheet runs through where the sphere would be
    assert sum(inside_free) > 100, inside_free
    # with it, the sphere's volume is (almost) free of water all along the path
    assert sum(inside_vis) < 0.1 * sum(inside_free), (inside_vis, inside_free)
    # and the water falling onto it is turned aside: less of the sheet right under it
    assert sum(shadow_vis) < 0.5 * sum(shadow_free), (shadow_vis, shadow_free)
