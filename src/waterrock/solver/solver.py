"""The solver: a scene's water, stepped a frame at a time.

    solver = Solver(scene)            # or Solver(scene, arch="cpu")
    solver.set_obstacles(snapshot)    # visitors, from the tracker
    solver.step(1 / 60)               # CFL-bounded substeps
    particles = solver.snapshot()     # positions, velocities, stable ids, recycled flags

A substep is: retire (sinks, non-finite particles), the pressure solver's step (which builds
the neighbour grid), emit. The host reads the device once per frame, after the last substep,
for the CFL condition of the next frame and the counters of the particle cycle.
"""

from __future__ import annotations

import logging
import math
import os
import time

import numpy as np
import taichi as ti

from waterrock.backend import init_backend
from waterrock.scene import MAX_SUBSTEPS, Scene
from waterrock.snapshots import ObstacleSnapshot, ParticleSnapshot
from waterrock.solver.boundary import Boundary
from waterrock.solver.dfsph import DFSPH
from waterrock.solver.grid import NeighborGrid
from waterrock.solver.launch import Batch, Graphs, launch_now
from waterrock.solver.obstacles import Obstacles
from waterrock.solver.pbf import PBF
from waterrock.solver.portals import PortalPorts
from waterrock.solver.sources import BLOCKED, EMITTED, N_COUNTERS, NONFINITE, RETIRED, STARVED, Sources
from waterrock.solver.state import ACTIVE, ParticleState
from waterrock.solver.terms import advect, frame_statistics, measure_density
from waterrock.solver.types import vec3
from waterrock.solver.wcsph import WCSPH

log = logging.getLogger(__name__)
METHODS = {"pbf": PBF, "dfsph": DFSPH, "wcsph": WCSPH}
MEMORY_HEADROOM = 0.8  # the share of the free memory a solver may take: the rest is the renderer's and the tracker's
# The host's copy of every slot for snapshots (state.read_active: 36 bytes) and a snapshot of them
# all with numpy's temporaries, or the state's loading arrays before it. Measured with every slot
# active, in all: PBF 337 bytes a particle, DFSPH 245, where the device arrays alone were counted
# as 276 and 188 and a budget that did not fit passed the check. The snapshot's packing (rho / rho0)
# added 4 bytes to the host's copy and 4 to the snapshot.
HOST_BYTES_PER_PARTICLE = 104
CELL_BYTES = 2 * 4  # a cell's count and its first slot (the scan's block sums add under 1 %)


class SolverError(RuntimeError):
    pass


def _cgroup_room() -> int | None:
    """Bytes this process's control group may still take (cgroup v2's memory.max less its
    memory.current, or v1's limit less its usage), or None where no limit is set: a systemd unit's
    MemoryMax or a container's limit ends the process long before /proc/meminfo runs out."""
    pairs = [("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
             ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")]
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                path = line.strip().split(":", 2)[-1]
                if line.startswith("0::") and path not in ("", "/"):
                    pairs.insert(0, (f"/sys/fs/cgroup{path}/memory.max", f"/sys/fs/cgroup{path}/memory.current"))
    except OSError:
        pass
    for limit_file, usage_file in pairs:
        try:
            with open(limit_file) as f:
                limit = f.read().strip()
            with open(usage_file) as f:
                usage = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # "max", or v1's "no limit" near 2^63
            return max(int(limit) - usage, 0)
        return None
    return None


def _available_memory_bytes() -> int | None:
    """Memory free for the solver: the system's available memory, or less where the process's
    control group is limited."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            pass
    room = _cgroup_room()
    if room is not None:
        avail = room if avail is None else min(avail, room)
    return avail


def memory_needed(scene: Scene, lists: bool = True) -> tuple[int, int]:
    """(bytes per particle of the budget, bytes of the neighbour grid's cells) that a solver for
    the scene allocates, counted from its arrays: the particle state, the pressure solver's own
    fields (state.MethodData) and the grid's per-particle arrays (with ``lists``, the stored
    neighbour lists) on the device, and on the host the state's copy for snapshots with one
    snapshot of every slot (HOST_BYTES_PER_PARTICLE); the grid's cells as the grid lays them out,
    h / CELLS_X long in x."""
    method = METHODS[scene.solver.method]
    per_particle = ParticleState.BYTES_PER_PARTICLE + method.Data.bytes_per_particle()
    per_particle += NeighborGrid.BYTES_PER_PARTICLE + (NeighborGrid.LIST_BYTES_PER_PARTICLE if lists else 0)
    per_particle += HOST_BYTES_PER_PARTICLE
    _, res = NeighborGrid.layout(scene.domain.lower, scene.domain.upper, scene.fluid.support_radius)
    cells = float(np.prod(res, dtype=np.float64)) + 1  # + the retired particles' bucket
    return per_particle, int(cells * CELL_BYTES)


def lattice_in_box(lower, upper, spacing: float) -> np.ndarray:
    """Particle centres on a cubic lattice filling a box, half a spacing in from its faces."""
    lo, hi = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    n = np.maximum(np.floor((hi - lo) / spacing + 1e-6).astype(int), 1)
    axes = [lo[a] + spacing * (0.5 + np.arange(n[a])) for a in range(3)]
    g = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    return g.astype(np.float32)


class Solver:
    def __init__(self, scene: Scene, arch: str | None = None):
        self.arch = init_backend(arch)
        self.scene = scene
        fluid, dom = scene.fluid, scene.domain
        self.rho0 = float(fluid.rest_density)
        self.spacing = float(fluid.spacing)
        self.h = float(fluid.support_radius)
        self.mass = float(fluid.particle_mass)
        self.gravity = ti.ndarray(vec3, 1)  # an array: see boundary.BoundaryArgs.params
        self.gravity.from_numpy(np.asarray([scene.solver.gravity], np.float32))
        # p / rho^2 at the bottom of a domain full of water: the scale of the pressure parameters
        height = float(np.max(np.subtract(dom.upper, dom.lower)))
        self.k_hydrostatic = float(np.linalg.norm(scene.solver.gravity)) * height / self.rho0
        self.settings = scene.solver
        capacity = int(fluid.max_particles)
        lists = self._check_memory(capacity)
        self.state = ParticleState(capacity)
        self.sources = Sources(scene.emitters, scene.sinks, self.spacing, seed=scene.solver.seed)
        self.portals = PortalPorts([p.box(dom, self.spacing) for p in scene.portals if p.direction == "out"],
                                   capacity)
        # the sort retires a particle not finite too, counted with those that retire catches
        self.grid = NeighborGrid(dom.lower, dom.upper, self.h, capacity, counters=self.sources.counters,
                                 nonfinite=NONFINITE, lists=lists)
        self.boundary = Boundary(
            dom.lower, dom.upper, self.h, spacing=self.spacing,
            rock_sdf=self._rock_sdf(), friction=scene.rock.friction,
        )
        self.obstacles = Obstacles()
        self.method = METHODS[scene.solver.method](scene.solver, fluid, self.state)
        self._stats_buf = ti.ndarray(ti.f32, 3)  # measure_density's sums
        self._frame_stats = np.zeros(2 + N_COUNTERS, np.int32)  # frame_statistics's, on the host
        self.graphs = Graphs()
        self.dispatch = launch_now  # a substep's Batch while it records (see substep)
        self.stats: dict = {}
        self.reset()

    # --- set-up ------------------------------------------------------------------------------

    def _check_memory(self, capacity: int) -> bool:
        """Whether the budget fits in the memory free (MEMORY_HEADROOM of it) with stored
        neighbour lists; if only without them, the passes walk the rows (said in the log); if not
        even so, refuse before allocating anything, naming the key that decides; see memory_needed."""
        avail = _available_memory_bytes()
        per_particle, grid = memory_needed(self.scene, lists=True)
        if avail is None or capacity * per_particle + grid <= MEMORY_HEADROOM * avail:
            return True
        per_particle, grid = memory_needed(self.scene, lists=False)
        need = capacity * per_particle + grid
        if need <= MEMORY_HEADROOM * avail:
            log.info("fluid.max_particles = %s leaves no memory for stored neighbour lists: the passes walk the "
                     "grid's rows", f"{capacity:,}")
            return False
        room = MEMORY_HEADROOM * avail
        gib = 2**30
        if grid > 0.5 * room:
            raise SolverError(
                f"the neighbour grid over the domain needs about {grid / gib:.1f} GiB, but only {avail / gib:.1f} GiB "
                f"of memory is free: shrink the domain or raise fluid.particle_radius"
            )
        fits = int((room - grid) // per_particle)
        raise SolverError(
            f"particle budget fluid.max_particles = {capacity:,} needs about {need / gib:.1f} GiB "
            f"({per_particle} bytes a particle), but only {avail / gib:.1f} GiB of memory is free, of which the "
            f"solver takes at most {MEMORY_HEADROOM:.0%}: lower fluid.max_particles to {fits:,} or less"
        )

    def _rock_sdf(self):
        from waterrock.solver.mesh_sdf import scene_rock_sdf

        return scene_rock_sdf(self.scene.rock, self.h)

    def initial_positions(self) -> np.ndarray:
        """The scene's fluid blocks on a lattice, less what falls inside the rock."""
        blocks = [lattice_in_box(b.lower, b.upper, self.spacing) for b in self.scene.fluid.blocks]
        if not blocks:
            return np.zeros((0, 3), np.float32)
        x = np.concatenate(blocks)
        sdf = self.boundary.rock_sdf
        if sdf is not None and len(x):
            x = x[sdf.sample(x) > 0.5 * self.spacing]
        if len(x) > self.state.capacity:
            log.warning(
                "the fluid blocks hold %d particles, more than the budget of %d: the rest are left out",
                len(x), self.state.capacity,
            )
            x = x[: self.state.capacity]
        return x

    def reset(self) -> None:
        """Back to the scene's initial state: the blocks of water, the emitters restarted."""
        self.state.load(self.initial_positions())
        self.grid.build(self.state)
        self.sources.restart()
        self.time = 0.0
        self.frame = 0
        self.substeps_total = 0
        top = max((e.speed for e in self.scene.emitters), default=0.0)
        self._max_speed = max(top, 1.0)
        self.active = int(self.n_active())  # as of the last frame (the frame's statistics)
        self.stats = {"max_speed": 0.0, "active": self.active}

    # --- stepping ----------------------------------------------------------------------------

    def v_max(self, dt: float) -> float:
        """The speed limit of a substep: no particle crosses more than half a support radius,
        nor goes faster than the scene's max_speed (a runaway never shrinks the steps for ever)."""
        return min(0.5 * self.h / dt, self.settings.max_speed)

    def cfl_dt(self) -> float:
        c = getattr(self.method, "sound_speed", 0.0)
        return self.settings.cfl * self.spacing / max(self._max_speed + c, 1e-6)

    def plan(self, frame_dt: float) -> tuple[int, float]:
        """Substeps and their length for a frame: the CFL condition, bounded by max_substeps, or
        the scene's fixed time step; never more than MAX_SUBSTEPS, whatever got past the scene's
        validation or however long the frame (the water then runs slower than real time).

        When the bound bites, the SPH methods' substeps stay CFL-stable and the water runs slower.
        PBF's do not shrink (its ``keeps_frame_time``): a position-based solve is stable at
        frame-sized steps, and ``v_max(dt)`` keeps every particle within half a support radius a
        substep. Shrinking them would feed back: PBF's velocities are position changes over dt,
        so water squeezed between a visitor and the rock leaves faster the shorter the substep,
        and a faster max speed shortens the next one (measured: the default scene slowed to 0.13x
        real time with 20 m/s spray within 10 s of a virtual visitor)."""
        s = self.settings
        if s.time_step is not None:
            return self._bounded(max(1, round(min(frame_dt / s.time_step, MAX_SUBSTEPS + 1))), frame_dt), s.time_step
        dt_cfl = self.cfl_dt()
        wanted = math.ceil(min(frame_dt / dt_cfl - 1e-9, MAX_SUBSTEPS + 1))  # a float first: it may be inf
        n = self._bounded(max(1, min(max(s.substeps, wanted), s.max_substeps)), frame_dt)
        if getattr(self.method, "keeps_frame_time", False):
            return n, frame_dt / n
        return n, min(frame_dt / n, dt_cfl)

    def _bounded(self, n: int, frame_dt: float) -> int:
        """n substeps, or MAX_SUBSTEPS with a warning (rate-limited by the app's log)."""
        if n <= MAX_SUBSTEPS:
            return n
        log.warning("a frame of %.3g s asks for more than %d substeps: %d run, and the water runs slower than "
                    "real time (solver.time_step, solver.cfl or solver.max_substeps)", frame_dt, MAX_SUBSTEPS,
                    MAX_SUBSTEPS)
        return MAX_SUBSTEPS

    def substep(self, dt: float) -> None:
        """One substep: its launches are recorded, then run as one compiled graph (launch.py)."""
        self.obstacles.elapsed += dt  # where the obstacles are at the end of this substep
        batch = Batch()
        self.dispatch = batch
        try:
            self.sources.retire(self.state, batch)
            self.portals.capture(self.state, batch)
            self.method.substep(self, dt)
        finally:
            self.dispatch = launch_now
        self.graphs.run(batch)
        self.sources.emit(self.state, dt, self.obstacles.args(), self.boundary.contact)
        self.time += dt
        self.substeps_total += 1

    def flush(self) -> None:
        """Run what the substep has recorded so far: a graph boundary, where what follows repeats
        a number of times that varies (DFSPH's iterations), so that each part is one graph."""
        if isinstance(self.dispatch, Batch):
            self.graphs.run(self.dispatch)

    def wall_xsph(self, dt: float) -> float:
        """The XSPH coefficient of the solid boundary for a substep (see terms.xsph_boundary)."""
        return min(self.scene.fluid.wall_friction * dt, 1.0)

    def advect(self, dt: float) -> None:
        st = self.state
        self.dispatch(advect, st.x, st.v, st.flags, st.free_head, dt, self.v_max(dt), *self.boundary.args(),
            *self.obstacles.args())

    def step(self, frame_dt: float | None = None) -> dict:
        """Advance one frame (1 / frame_rate by default); returns the frame's statistics."""
        frame_dt = 1.0 / self.settings.frame_rate if frame_dt is None else float(frame_dt)
        if not (frame_dt > 0 and math.isfinite(frame_dt)):
            raise ValueError(f"frame_dt must be a positive finite number of seconds, got {frame_dt}")
        t0 = time.perf_counter()
        n, dt = self.plan(frame_dt)
        for _ in range(n):
            self.substep(dt)
        self.frame += 1
        self.stats = self._end_frame(n, dt)
        self.stats["wall_ms"] = 1e3 * (time.perf_counter() - t0)
        return self.stats

    def _end_frame(self, n: int, dt: float) -> dict:
        st = self.state
        frame_statistics(st.v, st.flags, st.free_head, self.sources.counters, self._frame_stats)
        vmax = float(self._frame_stats[:1].view(np.float32)[0])
        counters = self._frame_stats[2:]
        # the active particles are the first free_head slots once the emitters are done
        self.active = min(int(self._frame_stats[1]), st.capacity)
        if counters[NONFINITE]:
            log.warning("%d particles had non-finite position or velocity: retired and re-emitted",
                        int(counters[NONFINITE]))
        self._max_speed = min(vmax, self.settings.max_speed) if math.isfinite(vmax) else self._max_speed
        stats = {
            "frame": self.frame, "time": self.time, "substeps": n, "dt": dt, "max_speed": vmax,
            "nonfinite": int(counters[NONFINITE]), "retired": int(counters[RETIRED]),
            "emitted": int(counters[EMITTED]), "starved": int(counters[STARVED]),
            "blocked": int(counters[BLOCKED]), "active": self.active,
        }
        if hasattr(self.method, "end_frame"):
            stats.update(self.method.end_frame(n))
        return stats

    # --- inputs and outputs ------------------------------------------------------------------

    def set_obstacles(self, snapshot: ObstacleSnapshot | None) -> list[str]:
        """Visitors for the next steps. Obstacles with NaN or absurd values are dropped with a
        warning naming them; the others act. Returns the problems found."""
        return self.obstacles.set(snapshot if snapshot is not None else ObstacleSnapshot.empty())

    def take_outflow(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the outgoing portals took since the last call (once a frame): the index of each
        particle's portal among the scene's outgoing ones, positions, velocities."""
        return self.portals.take()

    def inject(self, positions, velocities) -> np.ndarray:
        """Bring particles in at ``positions`` (inside the domain) with ``velocities``, while the
        budget has slots: which were taken, (n,) bool. Between frames, never inside a substep."""
        p = np.asarray(positions, np.float32).reshape(-1, 3)
        v = np.asarray(velocities, np.float32).reshape(-1, 3)
        return self.portals.inject(self.state, p, v)

    def n_active(self) -> int:
        return int(np.count_nonzero(self.state.flags.to_numpy() & ACTIVE))

    def snapshot(self) -> ParticleSnapshot:
        """The active particles, with how packed the water is round each (the density the last
        substep computed, over rho0); the recycled flags are cleared for the next snapshot."""
        positions, velocities, ids, recycled, packing = self.state.read_active(self.rho0)
        return ParticleSnapshot(frame=self.frame, time=self.time, positions=positions, velocities=velocities,
                                ids=ids, recycled=recycled, packing=packing)

    def density(self) -> np.ndarray:
        """rho of every active particle in the current state (builds the grid; for measurement)."""
        st = self.state
        self.grid.build(st)
        measure_density(
            st.x, st.flags, st.free_head, st.rho, self._stats_buf, *self.grid.args(), *self.boundary.args_without_h(),
            self.mass, self.rho0,
        )
        active = (st.flags.to_numpy() & ACTIVE) != 0
        return st.rho.to_numpy()[active]

    def density_error(self) -> float:
        """Mean compression, mean(max(rho_i / rho0 - 1, 0)): the error DFSPH's solve bounds."""
        rho = self.density()
        return float(np.mean(np.maximum(rho / self.rho0 - 1.0, 0.0))) if len(rho) else 0.0

    def pressure(self) -> np.ndarray:
        """Pressure of every active particle, in Pa (DFSPH, WCSPH)."""
        active = (self.state.flags.to_numpy() & ACTIVE) != 0
        return self.method.pressure(self)[active]
