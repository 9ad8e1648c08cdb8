"""Particle state: structure-of-arrays with a fixed budget, allocated once.

What every method shares. Dynamic (persistent) arrays, reordered by the neighbour grid's counting
sort every substep:
  x      positions (m)                       v      velocities (m/s)
  ids    stable particle ids, a permutation of 0..capacity-1 that never changes as a set
  flags  bit 0 ACTIVE, bit 1 RECYCLED (emitted since the last snapshot)

Scratch arrays, recomputed every substep and never reordered:
  rho    density (kg/m^3)                    dv     a vec3 buffer (position corrections, new velocities)
  wall   the solids' density map at x_i, (grad Gamma, Gamma): sampled once where a substep's
         positions are fixed, read by its later passes

Each pressure solver owns its other fields, named for what they are (MethodData): PBF's x0, lambda
and omega, DFSPH's kappa, alpha and k, WCSPH's k and V, allocated only for the method the scene
chose. Those it keeps from one substep to the next (PBF's x0, DFSPH's kappa) it registers with the
state (ParticleState.carry), and the sort moves them with the particles (Carried).

Every active particle lies in the first free_head slots: the grid's sort puts the active ones
first and sets free_head after them, and the emitters fill the slots from there on. Kernels over
the particles loop over those slots (in_use), not the whole budget.

Nothing here grows: emitters take retired particles back, so memory stays flat for days.
"""

import numpy as np
import taichi as ti

from waterrock.solver.types import nd_f32, nd_f32_2d, nd_i32, nd_i32_2d, nd_vec3, vec3, vec4

ACTIVE = 1
RECYCLED = 2
MAX_CARRIED = 2  # fields a method may register for the sort to move (grid.SCATTER has a kernel for each count)


def bytes_of(dtype) -> int:
    """Bytes of one element of an array: the solver's types are all 32-bit scalars and vectors."""
    return 4 * (getattr(dtype, "n", None) or 1) * (getattr(dtype, "m", None) or 1)


@ti.func
def in_use(free_head: ti.template(), x: ti.template()) -> ti.i32:
    """The slots from the front that hold every active particle (free_head, which the emitters
    may have run past the budget when it starved). Taichi 1.7's CPU backend splits a loop of
    dynamic length into one contiguous share per thread, so a loop over the whole budget with
    the active particles in its first half ran on one thread (measured: the default scene, 1,800
    particles in a budget of 12,000, took as long on 2 threads as on 1)."""
    return ti.min(free_head[0], x.shape[0])


@ti.kernel
def read_back(x: nd_vec3, v: nd_vec3, ids: nd_i32, flags: nd_i32, rho: nd_f32, rho0: ti.f32, floats: nd_f32_2d,
              ints: nd_i32_2d):
    """Every slot's (x, v, rho / rho0) into ``floats`` and (id, flags) into ``ints``, host arrays,
    and the RECYCLED flags cleared: one launch where four to_numpy and a kernel clearing the flags
    were five (see ParticleState.read_active). rho is the last substep's, in the slots' order of
    its sort, as x is; a particle emitted since has none of its own yet: it counts as packed, as
    water leaving an emitter is."""
    for i in flags:
        for c in ti.static(range(3)):
            floats[i, c] = x[i][c]
            floats[i, 3 + c] = v[i][c]
        floats[i, 6] = 1.0 if flags[i] & RECYCLED else rho[i] / rho0
        ints[i, 0] = ids[i]
        ints[i, 1] = flags[i]
        flags[i] &= ~RECYCLED


class _Persistent:
    def __init__(self, capacity: int):
        self.x = ti.ndarray(vec3, capacity)
        self.v = ti.ndarray(vec3, capacity)
        self.ids = ti.ndarray(ti.i32, capacity)
        self.flags = ti.ndarray(ti.i32, capacity)


class Carried:
    """A field that a method keeps from one substep to the next (PBF's x0, DFSPH's kappa), registered
    with ParticleState.carry: the grid's sort moves it with the particles, from ``front`` (the
    state's) into ``back``, and the two trade places. The sort zeroes a retired particle's, so a
    particle emitted into its slot starts from zero."""

    def __init__(self, dtype, capacity: int):
        self.dtype = dtype
        self.front = ti.ndarray(dtype, capacity)
        self.back = ti.ndarray(dtype, capacity)
        self.clear()

    def swap(self) -> None:
        self.front, self.back = self.back, self.front

    def clear(self) -> None:
        self.front.fill(0)
        self.back.fill(0)


class ParticleState:
    # bytes per particle: 2 x (2 vec3 + 2 i32) persistent, f32 + vec3 + vec4 scratch; a method's
    # own fields are its data's (MethodData.bytes_per_particle)
    BYTES_PER_PARTICLE = 2 * (2 * 12 + 2 * 4) + 4 + 12 + 16

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError("particle budget must be at least 1")
        self.capacity = int(capacity)
        self._front = _Persistent(capacity)
        self.back = _Persistent(capacity)
        self.rho = ti.ndarray(ti.f32, capacity)
        self.dv = ti.ndarray(vec3, capacity)
        self.wall = ti.ndarray(vec4, capacity)
        # the fields the methods registered for the sort to move, in the order registered (carry)
        self.carried: list[Carried] = []
        # first retired slot: set by the grid's sort, advanced by the emitters (on the device)
        self.free_head = ti.ndarray(ti.i32, 1)
        # the host's copy for snapshots, allocated once (read_active)
        self._host_floats = np.zeros((capacity, 7), np.float32)  # x, v, rho / rho0
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
    def ids(self):
        return self._front.ids

    @property
    def flags(self):
        return self._front.flags

    def carry(self, dtype) -> Carried:
        """Register a field that the grid's sort moves with the particles (Carried): a method's
        data does, once, when it is made."""
        if len(self.carried) >= MAX_CARRIED:
            raise ValueError(f"the grid's sort moves at most {MAX_CARRIED} fields besides x, v, ids and flags")
        field = Carried(dtype, self.capacity)
        self.carried.append(field)
        return field

    def swap(self) -> None:
        """The sorted copy (the back buffers, the carried fields' included) becomes the state."""
        self._front, self.back = self.back, self._front
        for field in self.carried:
            field.swap()

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
            buf.flags.fill(0)
        for field in self.carried:
            field.clear()
        self._front.ids.from_numpy(np.arange(self.capacity, dtype=np.int32))
        self.free_head.fill(0)

    def read_active(self, rho0: float):
        """(positions, velocities, ids, recycled, packing) of the active particles, and the RECYCLED
        flags cleared on the device; packing is rho / rho0 (read_back). One launch with host arrays:
        Taichi 1.7 keeps a few bytes for each (measured in a running solver: about 6 bytes per
        to_numpy), which over a night of 60 fps frames adds up; four to_numpy a frame were a third
        of the app's slow memory creep."""
        read_back(self.x, self.v, self.ids, self.flags, self.rho, rho0, self._host_floats, self._host_ints)
        ints = self._host_ints
        active = np.flatnonzero(ints[:, 1] & ACTIVE)
        # one gather of the active rows, then contiguous copies of its columns: a boolean mask per
        # column searched the mask again for each (0.19 ms for three, against 0.07, 12,000 slots)
        rows = self._host_floats[active]
        positions, velocities, packing = rows[:, :3].copy(), rows[:, 3:6].copy(), rows[:, 6].copy()
        ints = ints[active]
        return positions, velocities, ints[:, 0].copy(), (ints[:, 1] & RECYCLED) != 0, packing

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
        self.v.from_numpy(v)
        self.flags.from_numpy(flags)
        self.free_head.fill(n)


class MethodData:
    """A pressure solver's own per-particle fields, named for what they are and allocated only for
    the method the scene chose: the data apart from the time step, as SPlisHSPlasH keeps
    SimulationDataDFSPH beside TimeStepDFSPH. A subclass names them with their types:

    - ``CARRIED``, kept from one substep to the next: registered with the state (carry), which
      the sort moves with the particles; ``data.name`` is the state's current buffer;
    - ``SCRATCH``, recomputed every substep: ``data.name`` is the array.
    """

    CARRIED: dict = {}
    SCRATCH: dict = {}

    def __init__(self, state: ParticleState):
        self._carried = {name: state.carry(dtype) for name, dtype in self.CARRIED.items()}
        for name, dtype in self.SCRATCH.items():
            setattr(self, name, ti.ndarray(dtype, state.capacity))

    def __getattr__(self, name: str):
        # only for names not found on the object: a carried field, whose buffers the sort swaps
        carried = self.__dict__.get("_carried", {})
        if name in carried:
            return carried[name].front
        raise AttributeError(f"{type(self).__name__} has no field {name!r}")

    @classmethod
    def bytes_per_particle(cls) -> int:
        """Bytes a particle the data allocates: a carried field twice (its front and back)."""
        return 2 * sum(map(bytes_of, cls.CARRIED.values())) + sum(map(bytes_of, cls.SCRATCH.values()))
