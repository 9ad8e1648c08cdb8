"""Water crossing between works (DESIGN.md, "Many works, many machines"): the solver's side.

An outgoing portal is a box; each substep, an active particle inside one is retired and its
position and velocity appended to the frame's outflow buffer (one launch in the substep's graph,
with the sinks' retire). Once a frame the host takes the buffer and hands it to the network
(``net/portal.py``). An inflow brings particles in through :meth:`PortalPorts.inject`: each into
a retired slot while the budget has one, the rest refused and counted as such by the peer. No
host round trip inside a substep: the buffer's count is read once a frame.

A particle of the outflow whose slot a full buffer could not take stays active in its box and
is taken by a later substep.
"""


import numpy as np
import taichi as ti

from waterrock.solver.launch import launch_now
from waterrock.solver.state import ACTIVE, RECYCLED, in_use
from waterrock.solver.types import nd_i32, nd_vec3, vec3

MAX_PORTALS = 8
MAX_OUTFLOW = 1 << 16  # particles a frame's outflow buffer holds


# a particle in the outflow buffer or the inflow's staging: position, velocity, and (outflow) its
# portal: one array, so that the host reads or writes it in one copy a frame (each copy of a
# Taichi ndarray costs a few hundred microseconds on the CPU backend, whatever its size)
vec7 = ti.types.vector(7, ti.f32)
nd_vec7 = ti.types.ndarray(dtype=vec7, ndim=1)


@ti.kernel
def capture(x: nd_vec3, v: nd_vec3, flags: nd_i32, free_head: nd_i32, lower: nd_vec3, upper: nd_vec3,
            n_portals: ti.i32, out: nd_vec7, out_count: nd_i32):
    for i in range(in_use(free_head, x)):
        if flags[i] & ACTIVE:
            p = x[i]
            which = -1
            for k in range(n_portals):
                lo, hi = lower[k], upper[k]
                if which < 0 and lo.x <= p.x <= hi.x and lo.y <= p.y <= hi.y and lo.z <= p.z <= hi.z:
                    which = k
            if which >= 0:
                slot = ti.atomic_add(out_count[0], 1)
                if slot < out.shape[0]:
                    u = v[i]
                    out[slot] = vec7(p.x, p.y, p.z, u.x, u.y, u.z, ti.cast(which, ti.f32))
                    flags[i] = 0


@ti.kernel
def inject(arrivals: nd_vec7, n: ti.i32, x: nd_vec3, v: nd_vec3, flags: nd_i32, free_head: nd_i32):
    """Particles into retired slots while there are any; the 7th component of each arrival is
    set to 1 where it was taken, 0 where the budget was full."""
    for k in range(n):
        slot = ti.atomic_add(free_head[0], 1)
        a = arrivals[k]
        a[6] = 0.0
        if slot < x.shape[0]:
            x[slot] = vec3(a[0], a[1], a[2])  # a method's carried fields start at zero: the sort zeroed them
            v[slot] = vec3(a[3], a[4], a[5])
            flags[slot] = ACTIVE | RECYCLED
            a[6] = 1.0
        arrivals[k] = a


class PortalPorts:
    """The outgoing portals' boxes and the frame's outflow buffer; the inflow's staging arrays."""

    def __init__(self, boxes: list[tuple], capacity: int):
        if len(boxes) > MAX_PORTALS:
            raise ValueError(f"at most {MAX_PORTALS} outgoing portals, not {len(boxes)}")
        self.n = len(boxes)
        lo = np.zeros((MAX_PORTALS, 3), np.float32)
        hi = np.zeros((MAX_PORTALS, 3), np.float32)
        for k, (a, b) in enumerate(boxes):
            lo[k], hi[k] = a, b
        self.lower, self.upper = ti.ndarray(vec3, MAX_PORTALS), ti.ndarray(vec3, MAX_PORTALS)
        self.lower.from_numpy(lo)
        self.upper.from_numpy(hi)
        size = max(1, min(capacity, MAX_OUTFLOW)) if self.n else 1
        self.out = ti.ndarray(vec7, size)
        self.out_count = ti.ndarray(ti.i32, 1)
        self.out_count.fill(0)
        self._in: dict = {}  # staging for inject, by size

    def capture(self, state, dispatch=launch_now) -> None:
        if self.n:
            dispatch(capture, state.x, state.v, state.flags, state.free_head, self.lower, self.upper, self.n,
                     self.out, self.out_count)

    def take(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The particles the frame's substeps handed to the outgoing portals, and empty the
        buffer: which portal (n,), positions (n, 3), velocities (n, 3)."""
        n = min(int(self.out_count.to_numpy()[0]), self.out.shape[0]) if self.n else 0
        if n == 0:
            return np.zeros(0, np.int32), np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
        self.out_count.fill(0)
        rows = self.out.to_numpy()[:n]
        return rows[:, 6].astype(np.int32), rows[:, :3].copy(), rows[:, 3:6].copy()

    def inject(self, state, positions: np.ndarray, velocities: np.ndarray) -> np.ndarray:
        """Bring particles in (one launch); which of them the budget took: (n,) bool."""
        n = len(positions)
        if n == 0:
            return np.zeros(0, bool)
        # staging by powers of two from 1024: a copy costs its whole array, so ten particles after
        # a burst of 100,000 must not pay for the burst's array (0.9 -> 4.7 ms, measured)
        size = max(1024, 1 << (n - 1).bit_length())
        staging = self._in.get(size)
        if staging is None:
            staging = self._in[size] = ti.ndarray(vec7, size)
        rows = np.zeros((size, 7), np.float32)
        rows[:n, :3], rows[:n, 3:6] = positions, velocities
        staging.from_numpy(rows)
        inject(staging, n, state.x, state.v, state.flags, state.free_head)
        return staging.to_numpy()[:n, 6] == 1.0
