"""Each method's own fields (state.MethodData): the sort carries the ones a method registers with
its particles, and the bytes a particle that the memory check counts are the ones allocated."""

import numpy as np
import pytest
import taichi as ti

from tests.solver.conftest import make_scene
from waterrock.solver.grid import NeighborGrid
from waterrock.solver.solver import METHODS
from waterrock.solver.state import ACTIVE, ParticleState
from waterrock.solver.types import vec2


@pytest.mark.parametrize("n_carried", [0, 1, 2])
def test_the_sort_carries_the_registered_fields_with_their_particles(n_carried):
    rng = np.random.default_rng(5)
    capacity, n = 600, 500
    state = ParticleState(capacity)
    fields = [state.carry(dtype) for dtype in (vec2, ti.f32)[:n_carried]]
    state.load(rng.uniform(0.0, 0.3, (n, 3)).astype(np.float32))
    flags = state.flags.to_numpy()
    flags[::7] = 0  # retired since the last sort: their slots are the emitters' next
    state.flags.from_numpy(flags)
    ids = state.ids.to_numpy()
    values = [np.stack([ids + 0.5, -ids], axis=1).astype(np.float32), (ids + 0.25).astype(np.float32)]
    for field, value in zip(fields, values, strict=False):
        field.front.from_numpy(value)
    NeighborGrid(np.zeros(3), np.full(3, 0.3), 0.03, capacity).build(state)

    ids, active = state.ids.to_numpy(), (state.flags.to_numpy() & ACTIVE) != 0
    assert active.sum() == n - len(range(0, n, 7)) and np.all(active[: active.sum()])  # sorted, active first
    for field, value in zip(fields, values, strict=False):
        got = field.front.to_numpy()  # the sorted copy is the state's now
        np.testing.assert_array_equal(got[active], value[ids[active]])  # moved with its particle (slot = id before)
        assert not np.any(got[~active])  # zeroed for a retired one: an emitted particle starts from zero


def test_too_many_carried_fields_are_refused():
    state = ParticleState(10)
    state.carry(ti.f32)
    state.carry(ti.f32)
    with pytest.raises(ValueError, match="at most 2"):
        state.carry(ti.f32)


def _bytes(*arrays) -> int:
    return sum(a.to_numpy().nbytes for a in arrays)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_the_bytes_counted_a_particle_are_those_allocated(method):
    capacity = 64
    state = ParticleState(capacity)
    shared = [state.rho, state.dv, state.wall] + [getattr(buf, name) for buf in (state._front, state.back)
                                                  for name in ("x", "v", "ids", "flags")]
    assert _bytes(*shared) == capacity * ParticleState.BYTES_PER_PARTICLE
    scene = make_scene(fluid={"max_particles": capacity}, solver={"method": method})
    m = METHODS[method](scene.solver, scene.fluid, state)
    own = [a for f in state.carried for a in (f.front, f.back)] + [getattr(m.data, name) for name in m.Data.SCRATCH]
    assert _bytes(*own) == capacity * m.Data.bytes_per_particle()
    assert len(state.carried) == len(m.Data.CARRIED)  # what the sort moves is what the method registered
