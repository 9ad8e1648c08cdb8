"""Emitters and sinks: the fixed particle budget cycles through them.

An emitter is an opening (a disk or a rectangle) on a plane, facing ``direction``. It emits
whole layers of particles on a square lattice of the particle spacing, so that the new water
enters at rest density: by default one layer every ``spacing / speed`` seconds, which fills the
opening at ``rate = speed * area / spacing^3`` particles per second; a higher ``rate`` packs the
layers tighter. New particles take retired slots, which the neighbour grid's sort leaves at
the end of the arrays from ``free_head`` on; when there are none left the emitter starves
(counted) until a sink retires some water. A visitor in front of the opening blocks it, as a
hand over a tap does: no particle is placed inside an obstacle's reach or within half a spacing
of it (counted). Placed there, it would be projected onto the obstacle's surface on top of the
water already pushed there, and the pressure solve would fling the pair apart (measured with
DFSPH and the virtual visitor walking through the default scene's source: 12 to 20 m/s spray).

Each layer's lattice is moved across the opening by its own fraction of a cell, and each particle
by up to JITTER / 2 of the spacing and SPREAD of the speed across it: water kept in the lattice's
columns falls as a comb of parallel lines. The fractions of a cell follow a quasi-random sequence,
which covers the cell evenly over a few layers where random ones leave a comb of random strength
(its peaks grow as the square root of the layers, as fast as the noise around them). The numbers
are hashed on the device from the emitter's key, drawn from the emitters' seeded generator, and
its count of layers: a seed emits the same water every run, and no array is uploaded.

The layers due in a substep are counted by arithmetic and emitted in one launch, never more
than the whole budget holds: whatever the scene says (a speed of 1e30 m/s, a rate of 1e12
particles a second, a frame of a day), a substep's emission is one kernel over at most about
the budget's particles. The layers past those are counted as starved: there would be no slots
for them anyway.

A sink is a box: a particle that enters it is retired. A particle whose position or velocity is
not finite is retired as well, before it can reach a neighbour sum, and the next layer of an
emitter brings it back: a NaN is caught and re-emitted, never spread.
"""

import math

import numpy as np
import taichi as ti

from waterrock.solver.grid import is_finite3
from waterrock.solver.launch import launch_now
from waterrock.solver.obstacles import ObstacleArgs, blocked_by_obstacle
from waterrock.solver.state import ACTIVE, RECYCLED, in_use
from waterrock.solver.types import nd_capsule, nd_i32, nd_vec3, vec2, vec3

# counters, read once per frame
NONFINITE, RETIRED, EMITTED, STARVED, BLOCKED, N_COUNTERS = 0, 1, 2, 3, 4, 5
MAX_SINKS = 16
MAX_LAYERS = 2**30  # layers due in a substep at most (layers_due): more than any budget holds
# Each particle moves up to JITTER / 2 of the spacing along each of the opening's axes, so two new
# particles stay at least 1 - JITTER spacings apart: closer, the pressure solve flings them apart.
JITTER = 0.4
SPREAD = 0.03  # the velocity across the opening, up to this fraction of the speed along each axis
# The R2 sequence (M. Roberts, "The unreasonable effectiveness of quasirandom sequences", 2018):
# the n-th point is n (1/g, 1/g^2) mod 1, g the plastic number; here in 32-bit fixed point
R2 = (3242174889, 2447445414)


@ti.func
def lowbias32(x):
    """An integer hash of a u32 (C. Wellons, "Prospecting for hash functions", 2018: lowbias32)."""
    x ^= x >> 16
    x *= ti.u32(0x7FEB352D)
    x ^= x >> 15
    x *= ti.u32(0x846CA68B)
    x ^= x >> 16
    return x


@ti.func
def uniform3(key):
    """Three numbers in [-0.5, 0.5) hashed from a u32 key, and the key for the next three."""
    a = lowbias32(key)
    b = lowbias32(a)
    c = lowbias32(b)
    return vec3(ti.cast(a >> 8, ti.f32), ti.cast(b >> 8, ti.f32), ti.cast(c >> 8, ti.f32)) / 2**24 - 0.5, c


@ti.kernel
def retire(x: nd_vec3, v: nd_vec3, flags: nd_i32, free_head: nd_i32, sink_lower: nd_vec3, sink_upper: nd_vec3,
           n_sinks: ti.i32, counters: nd_i32):
    for i in range(in_use(free_head, x)):
        if flags[i] & ACTIVE:
            p = x[i]
            if not (is_finite3(p) and is_finite3(v[i])):
                flags[i] = 0
                x[i] = vec3(0.0)
                v[i] = vec3(0.0)
                ti.atomic_add(counters[NONFINITE], 1)
            else:
                for s in range(n_sinks):
                    lo, hi = sink_lower[s], sink_upper[s]
                    if lo.x <= p.x <= hi.x and lo.y <= p.y <= hi.y and lo.z <= p.z <= hi.z:
                        flags[i] = 0
                        ti.atomic_add(counters[RETIRED], 1)


@ti.kernel
def emit_layers(points: nd_vec3, first: ti.i32, count: ti.i32, layers: ti.i32, velocities: nd_vec3, emitter: ti.i32,
                newest_age: ti.f32, layer_gap: ti.f32, skipped: ti.i32, axes: nd_vec3, spacing: ti.f32, key: ti.i32,
                layer_number: ti.i32,
                x: nd_vec3, v: nd_vec3, flags: nd_i32,
                free_head: nd_i32, counters: nd_i32, margin: ti.f32, contact: ti.f32,
                o_capsules: nd_capsule, o_count: ti.i32, o_elapsed: ti.f32):
    """``layers`` layers of an emitter's opening in one launch, layer l moved on by its velocity
    for the ``newest_age + l * layer_gap`` since it was due; ``skipped`` particles of the layers
    left out (Sources.emit) are counted as starved. The oldest layer is the emitter's
    ``layer_number``-th: the n-th moves across the opening by the n-th point of the R2 sequence
    from a start hashed from ``key``, and its particle i by JITTER and SPREAD times numbers hashed
    from (key, n, i). The emitter's velocity and axes (across, across, along) come from arrays:
    Taichi 1.7 leaks about 6 bytes for each vec3 passed by value (measured: 100,000 launches), and
    a layer is emitted about every frame."""
    o = ti.static(ObstacleArgs(o_capsules, o_count, o_elapsed))
    velocity = velocities[emitter]
    e1, e2, d = axes[3 * emitter], axes[3 * emitter + 1], axes[3 * emitter + 2]
    start = lowbias32(ti.cast(key, ti.u32))
    ti.atomic_add(counters[STARVED], skipped)
    for k in range(count * layers):
        layer = k // count
        age = newest_age + layer * layer_gap
        n = ti.cast(layer_number + layers - 1 - layer, ti.u32)
        cell = vec2(ti.cast((n * ti.u32(R2[0]) + start) >> 8, ti.f32),
                    ti.cast((n * ti.u32(R2[1]) + lowbias32(start)) >> 8, ti.f32))
        shift = cell / 2**24 - 0.5
        jitter, particle_key = uniform3(lowbias32(start + n) + ti.cast(k % count, ti.u32))
        spread, _ = uniform3(particle_key)
        # the speed as velocity . d, not its norm: (1e30 m/s)^2 overflows to a NaN velocity
        vk = velocity + 2.0 * SPREAD * velocity.dot(d) * (spread.x * e1 + spread.y * e2)
        p = (points[first + k % count] + spacing * (shift.x * e1 + shift.y * e2)
             + JITTER * spacing * (jitter.x * e1 + jitter.y * e2 + jitter.z * d) + age * vk)
        slot = x.shape[0]
        if blocked_by_obstacle(p, margin, contact, o):
            ti.atomic_add(counters[BLOCKED], 1)
        else:
            slot = ti.atomic_add(free_head[0], 1)
            if slot >= x.shape[0]:
                ti.atomic_add(counters[STARVED], 1)
        if slot < x.shape[0]:
            x[slot] = p  # a method's carried fields start at zero: the sort zeroed them (state.Carried)
            v[slot] = vk
            flags[slot] = ACTIVE | RECYCLED
            ti.atomic_add(counters[EMITTED], 1)


def opening_axes(emitter) -> np.ndarray:
    """The opening's unit axes as rows: the lattice's two across it, then its direction."""
    d = np.asarray(emitter.direction, np.float64)
    d /= np.linalg.norm(d)
    helper = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    e1 = np.cross(d, helper)
    e1 /= np.linalg.norm(e1)
    return np.array([e1, np.cross(d, e1), d])


def opening_lattice(emitter, spacing: float) -> np.ndarray:
    """Points of one emitted layer: a square lattice of the spacing over the opening."""
    e1, e2, _ = opening_axes(emitter)
    if emitter.shape == "disk":
        half = emitter.radius
    else:
        half = 0.5 * max(emitter.size)
    n = int(math.floor(half / spacing))
    u, w = np.meshgrid(np.arange(-n, n + 1) * spacing, np.arange(-n, n + 1) * spacing, indexing="ij")
    u, w = u.ravel(), w.ravel()
    if emitter.shape == "disk":
        keep = u**2 + w**2 <= emitter.radius**2 + 1e-12
    else:
        keep = (np.abs(u) <= 0.5 * emitter.size[0] + 1e-12) & (np.abs(w) <= 0.5 * emitter.size[1] + 1e-12)
    if not keep.any():  # an opening smaller than the spacing still emits its centre
        keep = (u == 0) & (w == 0)
    c = np.asarray(emitter.center, np.float64)
    return (c + np.outer(u[keep], e1) + np.outer(w[keep], e2)).astype(np.float32)


class Sources:
    """The scene's emitters and sinks, and the per-frame counters of the particle cycle."""

    def __init__(self, emitters, sinks, spacing: float, seed: int = 0):
        self.spacing = spacing
        self.seed = seed
        self.emitters = list(emitters)
        layers = [opening_lattice(e, spacing) for e in self.emitters]
        self.first = np.cumsum([0] + [len(p) for p in layers])[:-1].tolist()
        self.count = [len(p) for p in layers]
        pts = np.concatenate(layers) if layers else np.zeros((1, 3), np.float32)
        self.points = ti.ndarray(vec3, len(pts))
        self.points.from_numpy(pts)
        self.layers_per_second = []
        velocities = np.zeros((max(len(self.emitters), 1), 3), np.float32)
        for k, (e, m) in enumerate(zip(self.emitters, self.count, strict=True)):
            d = np.asarray(e.direction, np.float64)
            velocities[k] = e.speed * d / np.linalg.norm(d)
            rate = e.rate if e.rate is not None else m * e.speed / spacing
            self.layers_per_second.append(rate / m)
        self.velocities = ti.ndarray(vec3, len(velocities))
        self.velocities.from_numpy(velocities)
        self._velocities = velocities  # the host's copy, for set_flow
        axes = [opening_axes(e) for e in self.emitters]
        self.axes = ti.ndarray(vec3, 3 * max(len(axes), 1))
        self.axes.from_numpy(np.concatenate(axes).astype(np.float32) if axes else np.zeros((3, 3), np.float32))
        self.phase: list[float] = []
        if len(sinks) > MAX_SINKS:
            raise ValueError(f"at most {MAX_SINKS} sinks")
        lo = np.zeros((MAX_SINKS, 3), np.float32)
        hi = np.zeros((MAX_SINKS, 3), np.float32)
        for k, s in enumerate(sinks):
            lo[k], hi[k] = s.lower, s.upper
        self.n_sinks = len(sinks)
        self.sink_lower = ti.ndarray(vec3, MAX_SINKS)
        self.sink_lower.from_numpy(lo)
        self.sink_upper = ti.ndarray(vec3, MAX_SINKS)
        self.sink_upper.from_numpy(hi)
        self.counters = ti.ndarray(ti.i32, N_COUNTERS)
        self.rate_scale = 1.0  # of every emitter's rate: the frame-rate governor's water (app/governor.py)
        self.restart()

    def restart(self) -> None:
        """Emitters start afresh (the first layer at once, the generator at its seed), counters at
        zero; nothing reallocated."""
        self.phase = [1.0] * len(self.emitters)
        self.rng = np.random.default_rng(self.seed)
        self.keys = self.rng.integers(2**31, size=len(self.emitters)).tolist()
        self.layer_number = [0] * len(self.emitters)
        self.counters.fill(0)

    def set_flow(self, k: int, speed: float, rate: float | None = None) -> None:
        """Emitter ``k`` brings its water at ``speed`` (m/s along its direction) and ``rate``
        (particles a second; None: what fills its opening at that speed) from its next layer on:
        one upload of the emitters' velocities, the layers already in the water left as they are
        (the operator's console). Its opening, and so its lattice, stays as it is."""
        e, m = self.emitters[k], self.count[k]
        d = np.asarray(e.direction, np.float64)
        self._velocities[k] = speed * d / np.linalg.norm(d)
        self.velocities.from_numpy(self._velocities)
        self.layers_per_second[k] = (rate if rate is not None else m * speed / self.spacing) / m
        self.emitters[k] = e.model_copy(update={"speed": speed, "rate": rate})

    def rate(self) -> float:
        """Particles per second that all emitters bring in."""
        return float(sum(m * lps for m, lps in zip(self.count, self.layers_per_second, strict=True)))

    def retire(self, state, dispatch=launch_now) -> None:
        dispatch(retire, state.x, state.v, state.flags, state.free_head, self.sink_lower, self.sink_upper,
            self.n_sinks, self.counters)

    def emit(self, state, dt: float, obstacle_args: tuple, contact: float) -> None:
        """Emit the layers due during a substep of length dt, each where it has got to by its end,
        where no obstacle (ObstacleArgs, ``contact`` the solids' collision distance) blocks it:
        one launch per emitter with a layer due, of at most the layers the budget holds."""
        for k in range(len(self.emitters)):
            lps = self.layers_per_second[k] * self.rate_scale
            due, self.phase[k] = layers_due(self.phase[k] + dt * lps)
            if due == 0:
                continue
            # the newest layers that the whole budget holds, the older ones (farther on) counted as
            # starved, at most a budget's worth, so that the frame's counter cannot overflow
            layers = min(due, state.capacity // self.count[k] + 1)
            skipped = min((due - layers) * self.count[k], state.capacity)
            emit_layers(
                self.points, self.first[k], self.count[k], layers, self.velocities, k,
                self.phase[k] / lps, 1.0 / lps, skipped, self.axes, self.spacing, self.keys[k], self.layer_number[k],
                state.x, state.v, state.flags, state.free_head, self.counters,
                0.5 * self.spacing, contact, *obstacle_args,
            )
            self.layer_number[k] = (self.layer_number[k] + layers) % 2**31


def layers_due(phase: float) -> tuple[int, float]:
    """(whole layers due, the phase left) for an emission phase in layers: by arithmetic, where a
    loop taking one layer at a time never ends once the phase passes 2^53 (phase - 1 == phase)
    and takes a launch per layer before that. A phase that is not finite (a rate of 1e308 over
    a frame) counts as more layers than any budget holds."""
    if not math.isfinite(phase):
        return MAX_LAYERS, 0.0
    whole = math.floor(phase)
    return int(min(whole, MAX_LAYERS)), phase - whole
