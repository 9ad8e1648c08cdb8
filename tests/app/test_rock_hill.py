"""The rock hill (scenes/rock_hill.toml, issue 26): the work at its own scale, ten simulated
seconds headless, its synthetic visitors on the rock through the tracker, stepped with the
water's clock as ``waterrock render`` runs them.

What is measured, and where the thresholds come from:
- the budget: the active particles never exceed ``max_particles``, and every one is finite;
- the rock: no particle deeper inside it than half a particle radius, in any sampled frame;
- the surface: the hill's upper surface, cut into 25 cm cells where the rock's top is above
  0.4 m, has water within 15 cm of the rock in at least three quarters of its cells at some
  time over the run (it flows over the surface, not down one channel);
- the visitor who walks up and stands on the south flank (synthetic script 'hill', there from
  4 s): while they stand, the tracker's capsule is on the rock under them, the water comes
  near them (within a metre) and hardly ever reaches their feet (within 0.8 of their radius).
"""

from __future__ import annotations

import numpy as np
import pytest

from waterrock.backend import init_backend
from waterrock.scene import load_scene
from waterrock.tracking.synthetic import script

FRAMES = 600  # 10 s at the scene's 60 Hz
SAMPLE = 6  # frames between looks at the water
CELL, UPPER, NEAR_ROCK = 0.25, 0.4, 0.15  # m
STANDS_FROM = 4.5  # s: the stander has arrived (their script: 4 s) and the tracker has them
FEET, AROUND = 0.8, 1.0  # of their radius; m


def upper_cells(sdf):
    """Centres (x, z) of the 25 cm cells whose rock top is above UPPER, and the tops."""
    from waterrock.tracking.synthetic import Ground

    ground = Ground.from_sdf(sdf)
    xs = np.arange(ground.xs[0], ground.xs[-1], CELL) + CELL / 2
    zs = np.arange(ground.zs[0], ground.zs[-1], CELL) + CELL / 2
    X, Z = np.meshgrid(xs, zs, indexing="ij")
    return xs, zs, ground.at(X, Z) > UPPER, ground


@pytest.fixture(scope="module")
def hill_run():
    init_backend("cpu")
    from waterrock.app.session import Inputs
    from waterrock.solver.solver import Solver

    scene = load_scene("rock_hill")
    solver = Solver(scene, arch="cpu")
    inputs = Inputs(scene, solver, stepped=True)
    xs, zs, upper, ground = upper_cells(solver.boundary.rock_sdf)
    stander = script("hill").people[1]
    wet = np.zeros_like(upper)
    r = scene.fluid.particle_radius
    out = {"deepest": 0.0, "max_active": 0, "nonfinite": 0, "feet": [], "around": [], "capsule": [],
           "budget": scene.fluid.max_particles, "ground": ground, "stander": stander}
    try:
        for f in range(FRAMES):
            obstacles = inputs.obstacles.latest()
            solver.set_obstacles(obstacles)
            stats = solver.step()
            out["max_active"] = max(out["max_active"], stats["active"])
            if f % SAMPLE:
                continue
            snap = solver.snapshot()
            x = snap.positions
            out["nonfinite"] += int((~np.isfinite(x)).any(axis=1).sum())
            d = solver.boundary.rock_sdf.sample(x)
            out["deepest"] = max(out["deepest"], float(-d.min()) / r if len(d) else 0.0)
            near = x[d < NEAR_ROCK]
            i = np.floor((near[:, 0] - xs[0] + CELL / 2) / CELL).astype(int)
            k = np.floor((near[:, 2] - zs[0] + CELL / 2) / CELL).astype(int)
            ok = (i >= 0) & (i < len(xs)) & (k >= 0) & (k < len(zs))
            wet[i[ok], k[ok]] = True
            if solver.time >= STANDS_FROM:
                p = stander.position(solver.time)
                ground_y = float(ground.at(p[0], p[2]))
                flat = np.hypot(x[:, 0] - p[0], x[:, 2] - p[2])
                low = (x[:, 1] > ground_y - 0.2) & (x[:, 1] < ground_y + 0.6)
                out["feet"].append(int(((flat < FEET * stander.radius) & low).sum()))
                out["around"].append(int(((flat < AROUND) & low).sum()))
                there = np.hypot(obstacles.a[:, 0] - p[0], obstacles.a[:, 2] - p[2]) < 0.3 if len(obstacles) else []
                out["capsule"].append(float(obstacles.a[there][0, 1] - obstacles.radius[there][0] - ground_y)
                                      if np.any(there) else np.nan)
    finally:
        inputs.close()
    out["wet_share"] = float((wet & upper).sum() / upper.sum())
    out["upper_cells"] = int(upper.sum())
    print(f"rock hill, {FRAMES} frames: most active {out['max_active']} of {out['budget']}, deepest in the rock "
          f"{out['deepest']:.2f} r, upper surface wet {out['wet_share']:.0%} of {out['upper_cells']} cells, "
          f"at the stander's feet {np.mean(out['feet']):.2f} particles a look, within 1 m {np.mean(out['around']):.1f}")
    return out


def test_the_water_stays_within_its_budget_and_out_of_the_rock(hill_run):
    assert 0 < hill_run["max_active"] <= hill_run["budget"]
    assert hill_run["nonfinite"] == 0
    assert hill_run["deepest"] <= 0.5, f"a particle {hill_run['deepest']:.2f} radii inside the rock"


def test_the_water_runs_over_the_hills_upper_surface(hill_run):
    assert hill_run["upper_cells"] > 100  # the hill has an upper surface worth the name
    assert hill_run["wet_share"] >= 0.75, f"water reached {hill_run['wet_share']:.0%} of the upper surface"


def test_a_standing_visitor_stands_on_the_rock_and_keeps_dry_feet(hill_run):
    capsule = np.array(hill_run["capsule"])
    assert len(capsule) > 10 and np.mean(np.isfinite(capsule)) > 0.9, "the tracker lost the standing visitor"
    assert np.nanmax(np.abs(capsule)) < 0.15, "the visitor's capsule is not on the rock under them"
    around, feet = np.array(hill_run["around"]), np.array(hill_run["feet"])
    assert np.mean(around > 0) > 0.5, "the water never came near the standing visitor: nothing to part"
    assert np.mean(feet) <= 0.05 * np.mean(around) and np.mean(feet == 0) >= 0.8, (feet, around)
