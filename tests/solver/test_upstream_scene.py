"""Three simulated seconds of the upstream scene: the water runs down the channel, stays out of it
and inside its walls, and reaches the +x face, where the portal will hand it over."""

import numpy as np

from waterrock.scene import load_scene
from waterrock.solver.solver import Solver

SECONDS = 3.0
HALF_OUTER = 0.23  # m: the walls' outer edge (tools/make_slope.py)
OUTLET_POOL = 0.4  # m: downstream of this, water pools against the +x wall without a portal and spills


def test_water_runs_down_the_channel_to_the_outlet():
    scene = load_scene("upstream")
    s = Solver(scene, arch="cpu")
    r = scene.fluid.particle_radius
    budget = scene.fluid.max_particles
    slab = scene.domain.upper[0] - 2 * scene.fluid.spacing  # the portal's slab at the +x face
    sdf = s.boundary.rock_sdf

    # an id is a slot of the budget, re-emitted after a sink retires it: each life is counted once
    entered = np.zeros(budget, bool)
    over_the_wall = np.zeros(budget, bool)
    arrivals, spilled, emitted, largest = 0, 0, 0, 0
    first_arrival = None
    deepest = np.inf
    for frame in range(round(SECONDS * scene.solver.frame_rate)):
        emitted += s.step()["emitted"]
        snap = s.snapshot()
        ids, x = snap.ids, snap.positions
        assert np.all(np.isfinite(x))
        largest = max(largest, len(snap))
        entered[ids[snap.recycled]] = False
        over_the_wall[ids[snap.recycled]] = False

        new = (x[:, 0] > slab) & ~entered[ids]
        entered[ids[new]] = True
        arrivals += int(new.sum())
        if first_arrival is None and new.any():
            first_arrival = snap.time

        # over a wall upstream of the pool that a portal would drain: the channel failed to hold it
        out = (np.abs(x[:, 2]) > HALF_OUTER) & (x[:, 0] < OUTLET_POOL) & ~over_the_wall[ids]
        over_the_wall[ids[out]] = True
        spilled += int(out.sum())

        if frame % 10 == 9:
            deepest = min(deepest, float(sdf.sample(x).min()))

    assert largest <= budget and s.n_active() <= budget
    assert deepest > -0.5 * r, f"a particle lies {-deepest * 1e3:.1f} mm inside the slope"
    # measured on a 2-core CPU: the first particle reaches the slab after 0.9-1.0 s, and about
    # 1900 first enter it by 3 s (1100 a second from 2 s on, with 1650 a second emitted)
    assert first_arrival is not None and first_arrival < 2.0, f"first arrival at {first_arrival} s"
    assert arrivals > 500, f"only {arrivals} particles reached the +x face in {SECONDS:g} s"
    assert spilled < 0.01 * emitted, f"{spilled} of {emitted} particles went over the channel's walls"
