"""Particle state: structure-of-arrays with a fixed budget, allocated once.

Dynamic (persistent) arrays, reordered by the neighbour grid's counting sort every substep:
  x      positions (m)                       v      velocities (m/s)
  x0     the position at the substep's start (PBF); scratch for the others
  kappa  accumulated pressure parameters of DFSPH's two solves, [divergence, density]:
         k dt and k = p / rho^2, kept as the warm start of the next substep (dfsph.warm_start)
  ids    stable particle ids, a permutation of 0..capacity-1 that never changes as a set
  flags  bit 0 ACTIVE, bit 1 RECYCLED (emitted since the last snapshot)

Scratch arrays, recomputed every substep and never reordered:
  rho    density (kg/m^3)                    aux    a per-particle scalar of the pressure solver
  aux2   a second one                        dv     a vec3 buffer (position corrections, new velocities)
  omega  vorticity (PBF)                     wall   the solids' density map at x_i, (grad Gamma, Gamma):
         sampled once where a substep's positions are fixed, read by its later passes

Every active particle lies in the first free_head slots: the grid's sort puts the active ones
first and sets free_head after them, and the emitters fill the slots from there on. Kernels over
the particles loop over those slots (in_use), not the whole budget.

Nothing here grows: emitters take retired particles back, so memory stays flat for days.
"""

import numpy as np
import taichi as ti

ACTIVE = 1
RECYCLED = 2

vec3 = ti.math.vec3


@ti.func
def in_use(free_head: ti.template(), x: ti.template()) -> ti.i32:
    """The slots from the front that hold every active particle (free_head, which the emitters
    may have run past the budget when it starved). Taichi 1.7's CPU backend splits a loop of
    dynamic length into one contiguous share per thread, so a loop over the whole budget with
    the active particles in its first half ran on one thread (measured: the default scene, 1,800
    particles in a budget of 12,000, took as long on 2 threads as on 1)."""
    return ti.min(free_head[0], x.shape[0])


@ti.kernel
def clear_recycled(flags: ti.types.ndarray(dtype=ti.i32, ndim=1)):
    for i in flags:
        flags[i] &= ~RECYCLED


class _Persistent:
    def __init__(self, capacity: int):
        self.x = ti.ndarray(vec3, capacity)
        self.v = ti.ndarray(vec3, capacity)
        self.x0 = ti.ndarray(vec3, capacity)
        self.kappa = ti.ndarray(ti.math.vec2, capacity)
        self.ids = ti.ndarray(ti.i32, capacity)
        self.flags = ti.ndarray(ti.i32, capacity)


class ParticleState:
    # bytes per particle: 2 x (4 vec3 + vec2 + 2 i32) persistent, 3 f32 + 2 vec3 + vec4 scratch
    BYTES_PER_PARTICLE = 2 * (4 * 12 + 8 + 8) + 3 * 4 + 2 * 12 + 16

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError("particle budget must be at least 1")
        self.capacity = int(capacity)
        self._front = _Persistent(capacity)
        self.back = _Persistent(capacity)
        self.rho = ti.ndarray(ti.f32, capacity)
        self.aux = ti.ndarray(ti.f32, capacity)
        self.aux2 = ti.ndarray(ti.f32, capacity)
        self.dv = ti.ndarray(vec3, capacity)
        self.omega = ti.ndarray(vec3, capacity)
        self.wall = ti.ndarray(ti.math.vec4, capacity)
        # first retired slot: set by the grid's sort, advanced by the emitters (on the device)
        self.free_head = ti.ndarray(ti.i32, 1)
        self.clear()

    # the front buffers are the state; the back buffers receive the sorted copy
    @property
    def x(self):
        return self._front.x

    @property
    def v(self):
        return self._front.v

    @property
    def x0(self):
        return self._front.x0

    @property
    def kappa(self):
        return self._front.kappa

    @property
    def ids(self):
        return self._front.ids

    @property
    def flags(self):
        return self._front.flags

    def swap(self) -> None:
        self._front, self.back = self.back, self._front

    def swap_velocity_scratch(self) -> None:
        """Make the scratch vec3 buffer (new velocities) the velocity array, without a copy."""
        self._front.v, self.dv = self.dv, self._front.v

    def clear(self) -> None:
        """Every particle retired, ids 0..capacity-1 in order."""
        for buf in (self._front, self.back):
            buf.x.fill(0.0)
            buf.v.fill(0.0)
            buf.x0.fill(0.0)
            buf.kappa.fill(0.0)
            buf.flags.fill(0)
        self._front.ids.from_numpy(np.arange(self.capacity, dtype=np.int32))
        self.free_head.fill(0)

    def load(self, positions: np.ndarray, velocities: np.ndarray | None = None) -> None:
        """Activate len(positions) particles at the given positions; retire the rest."""
        n = len(positions)
        if n > self.capacity:
            raise ValueError(f"{n} initial particles exceed the particle budget of {self.capacity}")
        x = np.zeros((self.capacity, 3), np.float32)
        x[:n] = positions
        v = np.zeros((self.capacity, 3), np.float32)
        if velocities is not None:
            v[:n] = velocities
        flags = np.zeros(self.capacity, np.int32)
        flags[:n] = ACTIVE | RECYCLED
        self.clear()
        self.x.from_numpy(x)
        self.x0.from_numpy(x)
        self.v.from_numpy(v)
        self.flags.from_numpy(flags)
        self.free_head.fill(n)
