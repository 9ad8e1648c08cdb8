"""A column of water at rest: DFSPH holds rest density and pressure grows as rho g h."""

import numpy as np
import pytest

from tests.solver.conftest import make_scene
from waterrock.solver.solver import Solver


@pytest.mark.xfail(
    strict=True,
    reason="known bug: DFSPH's Jacobi solves do not keep a walled 3D column at rest (it sloshes at "
    "~0.3 m/s); WCSPH passes the same test. Remove this marker when fixed.",
)
def test_dfsph_hydrostatic_column():
    _hydrostatic_column("dfsph", density_error=0.005)


def test_wcsph_hydrostatic_column():
    _hydrostatic_column("wcsph", density_error=0.01)


def _hydrostatic_column(method, density_error):
    r, rho0, g = 0.01, 1000.0, 9.81
    height = 0.4
    scene = make_scene(
        domain={"lower": [0, 0, 0], "upper": [0.16, 0.6, 0.16]},
        fluid={"particle_radius": r, "rest_density": rho0, "max_particles": 6000,
               "blocks": [{"lower": [0, 0, 0], "upper": [0.16, height, 0.16]}]},
        solver={"method": method, "frame_rate": 50, "substeps": 2, "density_tolerance": 0.001},
    )
    s = Solver(scene, arch="cpu")
    for _ in range(100):  # two seconds to settle
        s.step()
    snap = s.snapshot()
    assert np.all(np.isfinite(snap.positions))
    speed = np.linalg.norm(snap.velocities, axis=1)
    # at rest: what is left is the acoustic ripple of a weakly compressible fluid, ~1 % of sqrt(2 g H)
    assert speed.mean() < 0.03 and speed.max() < 0.1
    rho = s.density()
    mean_error = np.mean(np.maximum(rho / rho0 - 1.0, 0.0))
    assert mean_error < density_error

    # pressure against depth below the free surface, away from the top and bottom layers
    s.step()
    p = s.pressure()
    y = s.snapshot().positions[:, 1]
    surface = np.sort(y)[-50:].mean() + r
    depth = surface - y
    bins = np.linspace(0.06, height - 0.06, 6)
    for lo, hi in zip(bins[:-1], bins[1:], strict=True):
        sel = (depth >= lo) & (depth < hi)
        assert sel.sum() > 50
        want = rho0 * g * depth[sel].mean()
        got = p[sel].mean()
        assert abs(got / want - 1.0) < 0.10, f"depth {lo:.2f}-{hi:.2f} m: p = {got:.0f} Pa, rho g h = {want:.0f} Pa"
