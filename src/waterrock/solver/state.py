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
def read_back(x: ti.types.ndarray(dtype=vec3, ndim=1), v: ti.types.ndarray(dtype=vec3, ndim=1),
              ids: ti.types.ndarray(dtype=ti.i32, ndim=1), flags: ti.types.ndarray(dtype=ti.i32, ndim=1),
              floats: ti.types.ndarray(dtype=ti.f32, ndim=2), ints: ti.types.ndarray(dtype=ti.i32, ndim=2)):
    """Every slot's (x, v) into ``floats`` and (id, flags) into ``ints``, host arrays, and the
    RECYCLED flags cleared: one launch where four to_numpy and a kernel clearing the flags were five (see
    ParticleState.read_active)."""
    for i in flags:
        for c in ti.static(range(3)):
            floats[i, c] = x[i][c]
            floats[i, 3 + c] = v[i][c]
        ints[i, 0] = ids[i]
        ints[i, 1] = flags[i]
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
        # the host's copy for snapshots, allocated once (read_active)
        self._host_floats = np.zeros((capacity, 6), np.float32)
        self._host_ints = np.zeros((capacity, 2), np.int32)
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

    def swap_positions_with_back(self) -> None:
        """Make the back buffer's positions (new positions) the state's, without a copy: between
        the grid's sort and the next, the back buffer holds nothing anyone reads."""
        self._front.x, self.back.x = self.back.x, self._front.x

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

    def read_active(self):
        """(positions, velocities, ids, recycled) of the active particles, and the RECYCLED flags
        cleared on the device. One launch with host arrays: Taichi 1.7 keeps a few bytes for each
        (measured in a running solver: about 6 bytes per to_numpy), which over a night of 60 fps
        frames adds up; four to_numpy a frame were a third of the app's slow memory creep."""
        read_back(self.x, self.v, self.ids, self.flags, self._host_floats, self._host_ints)
        flags = self._host_ints[:, 1]
        active = (flags & ACTIVE) != 0
        positions, velocities = self._host_floats[active, :3], self._host_floats[active, 3:]  # contiguous copies
        return positions, velocities, self._host_ints[active, 0], (flags[active] & RECYCLED) != 0

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
