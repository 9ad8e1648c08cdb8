"""How packed the water is, in each snapshot: the density the step computed, over rho0 (the
renderer's look weighs lines by it), read back with the rest of the snapshot."""

import numpy as np

from tests.solver.conftest import make_scene
from waterrock.solver.solver import Solver
from waterrock.solver.state import ACTIVE


def test_a_snapshot_carries_each_particles_density_over_rho0():
    """PBF's (the real-time default); DFSPH and WCSPH fill the same density array each substep."""
    rho0 = 1000.0
    scene = make_scene(
        domain={"lower": [0, 0, 0], "upper": [0.16, 0.6, 0.16]},
        fluid={"particle_radius": 0.01, "rest_density": rho0, "max_particles": 2000,
               "blocks": [{"lower": [0, 0, 0], "upper": [0.16, 0.2, 0.16]}]},
        solver={"method": "pbf", "frame_rate": 50, "substeps": 2},
    )
    s = Solver(scene, arch="cpu")
    s.step()
    # a particle new since the last snapshot (here: all, loaded) has no density of its own yet
    first = s.snapshot()
    assert first.recycled.all() and np.all(first.packing == 1.0)
    for _ in range(2):
        s.step()
    rho = s.state.rho.to_numpy()[(s.state.flags.to_numpy() & ACTIVE) != 0]  # in the slots' order, as x
    snap = s.snapshot()
    assert not snap.recycled.any()
    assert snap.packing is not None and snap.packing.dtype == np.float32 and snap.packing.shape == (len(snap),)
    np.testing.assert_allclose(snap.packing, rho / rho0, rtol=1e-6)
    # a block of water is packed inside (the walls' share counted), looser at its free surface
    y = snap.positions[:, 1]
    assert np.median(snap.packing[y < 0.1]) > 0.9
    assert np.median(snap.packing[y > y.max() - 0.012]) < np.median(snap.packing[y < 0.1]) - 0.15
