"""PBF's vorticity (eq. 15) and XSPH (eq. 17), which ride on the first iteration's passes."""

import numpy as np
import pytest

from tests.solver.conftest import make_scene
from waterrock.solver.solver import Solver
from waterrock.solver.state import ACTIVE

OMEGA = 3.0  # rad/s about the y axis
CENTRE = np.array([0.2, 0.2, 0.2])


def _solver(viscosity=0.0, epsilon=0.0):
    scene = make_scene(
        domain={"lower": [0, 0, 0], "upper": [0.4, 0.4, 0.4]},
        fluid={"particle_radius": 0.01, "viscosity": viscosity, "max_particles": 1000,
               "blocks": [{"lower": [0.1, 0.1, 0.1], "upper": [0.3, 0.3, 0.3]}]},
        solver={"method": "pbf", "gravity": [0, 0, 0], "time_step": 1e-4, "vorticity_epsilon": epsilon},
    )
    return Solver(scene, arch="cpu")


def _read(s):
    st = s.state
    active = (st.flags.to_numpy() & ACTIVE) > 0
    return st.x.to_numpy()[active], st.v.to_numpy()[active], s.method.data.omega.to_numpy()[active]


def _interior(x, margin=0.045):
    """Particles with a full neighbourhood: farther than h (0.04 m) from the block's faces."""
    return np.all((x > 0.1 + margin) & (x < 0.3 - margin), axis=1)


def _set_velocity(s, field):
    x = s.state.x.to_numpy()
    s.state.v.from_numpy(field(x).astype(np.float32))


def _rotation(x):
    return np.cross([0.0, OMEGA, 0.0], x - CENTRE)


def test_vorticity_of_a_rigid_rotation_is_twice_its_angular_velocity():
    s = _solver()
    _set_velocity(s, _rotation)
    s.substep(1e-4)
    x, _, omega = _read(s)
    inside = _interior(x)
    assert inside.sum() >= 100
    np.testing.assert_allclose(omega[inside, 1], 2 * OMEGA, rtol=0.03)
    assert np.max(np.abs(omega[inside][:, [0, 2]])) < 0.03 * OMEGA


def test_uniform_flow_has_no_vorticity_and_keeps_its_velocity():
    s = _solver(viscosity=0.5)
    _set_velocity(s, lambda x: np.tile([0.4, 0.0, -0.2], (len(x), 1)))
    s.substep(1e-4)
    x, v, omega = _read(s)
    assert np.max(np.abs(omega)) < 1e-3
    np.testing.assert_allclose(v[_interior(x)], np.tile([0.4, 0.0, -0.2], (_interior(x).sum(), 1)), atol=1e-3)


def test_xsph_smooths_noise_and_spares_a_rigid_rotation():
    noise = np.random.default_rng(3).normal(0.0, 0.05, (1000, 3))  # the same for both runs
    spread = {}
    for viscosity in (0.0, 0.5):
        s = _solver(viscosity=viscosity)
        _set_velocity(s, lambda x: _rotation(x) + noise)
        s.substep(1e-4)
        x, v, _ = _read(s)
        inside = _interior(x)
        spread[viscosity] = np.std(v[inside] - _rotation(x[inside]))
    # XSPH pulls each velocity toward its neighbours' mean: the noise shrinks, the rotation stays
    assert spread[0.5] < 0.8 * spread[0.0]


def _spin_after_5_substeps(epsilon):
    """The mean angular velocity about the y axis of a rigid rotation after 5 substeps."""
    s = _solver(epsilon=epsilon)
    _set_velocity(s, _rotation)
    for _ in range(5):
        s.substep(1e-3)
    x, v, _ = _read(s)
    r = x - CENTRE
    return np.mean(np.cross(r, v)[:, 1] / np.maximum(np.sum(r[:, [0, 2]] ** 2, axis=1), 1e-6))


def test_vorticity_confinement_spins_a_vortex_up():
    plain = _spin_after_5_substeps(0.0)
    assert plain == pytest.approx(OMEGA, rel=0.01)  # without confinement it keeps its rate
    # confinement puts back rotation that the projection and the surface take out
    assert _spin_after_5_substeps(0.05) > plain + 0.005
    assert _spin_after_5_substeps(0.2) > _spin_after_5_substeps(0.05)
