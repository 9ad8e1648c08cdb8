"""The particle budget cycles through emitters and sinks: nothing is lost or duplicated."""

import numpy as np
import pytest

from tests.solver.conftest import make_scene
from waterrock.bench.cases import DamBreak
from waterrock.solver.solver import Solver
from waterrock.solver.state import ACTIVE, ParticleState


def assert_active_in_use(s: Solver) -> None:
    """Every active particle lies in the slots in use, the first free_head: the kernels loop over
    those alone (state.in_use), so one beyond would stand still, and feel nothing."""
    flags = s.state.flags.to_numpy()
    head = min(int(s.state.free_head.to_numpy()[0]), s.state.capacity)
    assert not np.any(flags[head:] & ACTIVE), f"active particles beyond the {head} slots in use"


def test_count_conserved_through_emitting_and_recycling():
    capacity = 600
    scene = make_scene(
        domain={"lower": [0, 0, 0], "upper": [0.3, 0.5, 0.3]},
        fluid={"particle_radius": 0.01, "max_particles": capacity},
        emitters=[{"shape": "disk", "center": [0.15, 0.4, 0.15], "radius": 0.04, "speed": 1.5}],
        sinks=[{"lower": [-1, -1, -1], "upper": [1, 0.05, 1]}],
        solver={"method": "wcsph", "time_step": 1e-3, "stiffness": 20000.0},
    )
    s = Solver(scene, arch="cpu")
    emitted = retired = 0
    saw_recycled_id_twice = False
    first_emission: dict[int, float] = {}
    for _frame in range(200):  # 200 frames of 50 substeps: 10,000 substeps
        st = s.step(0.05)
        emitted += st["emitted"]
        retired += st["retired"]
        assert st["nonfinite"] == 0
        assert_active_in_use(s)
        ids = s.state.ids.to_numpy()
        assert np.array_equal(np.sort(ids), np.arange(capacity))  # a permutation, always
        snap = s.snapshot()
        assert len(snap) == s.n_active()
        assert len(np.unique(snap.ids)) == len(snap)
        for i in snap.ids[snap.recycled]:
            if int(i) in first_emission:
                saw_recycled_id_twice = True
            first_emission[int(i)] = s.time
    assert s.substeps_total == 10_000
    # what came in and what went out balance with what is in the tank now
    assert emitted - retired == s.n_active()
    assert retired > capacity  # the budget went round more than once
    assert saw_recycled_id_twice  # ids come back, flagged as recycled


def test_loaded_particles_are_in_use_before_any_sort():
    state = ParticleState(100)
    state.load(np.zeros((40, 3), np.float32))
    assert int(state.free_head.to_numpy()[0]) == 40
    state.clear()
    assert int(state.free_head.to_numpy()[0]) == 0


@pytest.mark.parametrize("method", ["pbf", "dfsph", "wcsph"])
def test_initial_particles_are_in_use_from_the_first_substep(method):
    """The particles a scene starts with, at rest, are in use from the first substep: gravity
    and pressure give each of them a velocity."""
    case = DamBreak(n=2000, method=method)
    s = Solver(case.scene(max_particles=5000), arch="cpu")  # budget to spare past the block
    assert int(s.state.free_head.to_numpy()[0]) == s.n_active() == len(case.positions())
    assert_active_in_use(s)
    s.step(case.time_step)
    speed = np.linalg.norm(s.snapshot().velocities, axis=1)
    assert np.all(speed > 0.0), f"{np.count_nonzero(speed == 0)} particles stood still in the first substep"
