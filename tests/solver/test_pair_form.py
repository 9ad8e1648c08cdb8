"""The pair form of the neighbour sums (neighbors.for_each_pair) gives the solver the same water as
gathering every neighbour: the same terms, each pair taken once instead of twice."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from tests.solver.conftest import make_scene
from waterrock.bench.cases import DamBreak
from waterrock.solver.solver import Solver


def _run(case, pairs, substeps):
    s = Solver(case.scene(), arch="cpu")
    s.method.pairs = pairs
    for _ in range(substeps):
        s.substep(case.time_step)
    rho = s.state.rho.to_numpy()[: s.n_active()]  # the state's order is the snapshot's
    snap = s.snapshot()
    order = np.argsort(snap.ids)
    return snap.positions[order], snap.velocities[order], rho[order], s


@pytest.mark.parametrize("method,substeps", [("wcsph", 30), ("pbf", 5)])
def test_pair_form_matches_gather_form(method, substeps):
    case = DamBreak(n=4000, method=method)
    x_g, v_g, rho_g, _ = _run(case, False, substeps)
    x_p, v_p, rho_p, s = _run(case, True, substeps)
    assert s.grid.res[2] >= 4 and s.grid.res[1] >= 4  # blocks of every colour
    speed = np.abs(v_g).max()
    assert speed > 0.05  # the column has started to fall
    # the two forms add the same terms in another order: float32 rounding apart (PBF's
    # velocities are position changes over dt, a position's last bit over dt apart)
    np.testing.assert_allclose(x_p, x_g, atol=1e-6)
    np.testing.assert_allclose(v_p, v_g, atol=5e-4 * speed)
    np.testing.assert_allclose(rho_p, rho_g, rtol=1e-4)


def test_pair_form_follows_particles_that_cross_rows_between_passes():
    """PBF moves the particles between its passes: a sheet falling at 1.2 m/s and more crosses
    rows of cells within a substep. Each particle keeps the half-neighbourhood of the row it was
    sorted into (a pair taken twice, or none, showed as a sheet falling twice as fast)."""
    scene = make_scene(
        domain={"lower": [-0.5, 0.0, -0.15], "upper": [0.5, 1.1, 0.15]},
        fluid={"particle_radius": 0.015, "max_particles": 2500},
        emitters=[{"shape": "rect", "center": [0.0, 1.0, 0.0], "size": [0.1, 0.4], "speed": 1.2}],
        solver={"method": "pbf", "frame_rate": 30.0, "time_step": 0.01},
    )
    out = {}
    for pairs in (False, True):
        s = Solver(scene, arch="cpu")
        s.method.pairs = pairs
        for _ in range(6):
            s.step()
        snap = s.snapshot()
        out[pairs] = snap.positions, snap.velocities
    # the water compared particle by particle, each matched to the nearest of the other run: the
    # emitters' slots, and so the ids they hand out, follow the grid sort's atomics, which two
    # threads may take in either order (the spacing, 3 cm, leaves no doubt about the match)
    (x_g, v_g), (x_p, v_p) = out[False], out[True]
    assert len(x_p) == len(x_g) > 200
    dist, match = cKDTree(x_g).query(x_p)
    assert len(np.unique(match)) == len(match)
    # float32 rounding grows over 20 substeps to a few 1e-5 m (the fault gave 1e-2 m, 1 m/s)
    assert dist.max() < 5e-4
    np.testing.assert_allclose(v_p, v_g[match], atol=0.05)
