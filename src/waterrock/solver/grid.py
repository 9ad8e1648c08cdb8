"""The neighbour grid: a dense uniform grid rebuilt every substep by counting sort.

Build (Green 2010, "Particle simulation using CUDA"; Hoetzlein 2014, "Fast fixed-radius nearest
neighbors: interactive million-particle fluids"): every particle counts itself into its cell
(with an atomic that also hands it its rank inside the cell), an exclusive prefix sum of the
counts (scan.py) gives each cell's first slot, and a scatter moves the particle data to
``cell_start[cell] + rank``. After the scatter, the particles of a cell, and of a row of cells
along x, are contiguous in memory, which is what makes the neighbour loop (neighbors.py)
cache-friendly. Right after the sort, the grid stores each particle's neighbours for the
substep's passes to read (neighbors.build_lists).

Cells are h / CELLS_X long along x and h wide in y and z: the neighbour loop walks 3 x 3 rows of
them, each cut to the support sphere's chord (neighbors.py says why that shape).

Retired (inactive) particles are counted into one extra bucket past the last cell, so the sort
also compacts the active particles to the front: ``cell_start[n_cells]`` is the number of
active particles, read on the device by the emitters, never by the host inside a substep. The
slots past those in use (state.in_use) are all retired and stay where they are, uncounted: the
default scene's 10,000 idle slots in a budget of 12,000 took two threads' atomics on one
counter, a tenth of its frame.
"""

import numpy as np
import taichi as ti

from waterrock.solver.launch import launch_now
from waterrock.solver.neighbors import MAX_NEIGHBORS, build_lists, cell_coord, cell_index
from waterrock.solver.scan import CellScan
from waterrock.solver.state import ACTIVE, MAX_CARRIED, ParticleState, in_use
from waterrock.solver.types import ivec3, nd_any, nd_i32, nd_ivec3, nd_vec3, vec3

CELLS_X = 4  # cells per support radius along x (see the module's docstring)


@ti.func
def is_finite3(a: vec3) -> bool:
    """Whether a position or velocity is one to simulate: NaN fails every comparison, and the
    bound also catches inf and values that would overflow soon (or a cell index, see
    neighbors.cell_coord)."""
    return ti.abs(a.x) < 1e18 and ti.abs(a.y) < 1e18 and ti.abs(a.z) < 1e18


@ti.kernel
def _assign_cells(
    x: nd_vec3, flags: nd_i32, free_head: nd_i32, cell_id: nd_i32, rank: nd_i32, count: nd_i32,
    origin: nd_vec3, shape: nd_ivec3, n_cells: ti.i32, counters: nd_i32, nonfinite: ti.i32,
):
    """Each particle's cell and its rank in it; the slots past those in use (state.in_use), all
    retired, are not counted but keep their places after the counted ones (see _scatter).

    A particle whose position is not finite is retired here, counted in ``counters[nonfinite]``: the
    sinks' kernel (sources.retire) catches one at the start of a substep, but PBF moves the
    particles again before the sort, and nothing not finite may reach the neighbour loop."""
    lower, inv_cell, res = origin[0], origin[1], shape[0]
    head = in_use(free_head, x)
    for i in x:
        if i >= head:
            cell_id[i] = n_cells + 1
            rank[i] = i - head
        else:
            c = n_cells  # the bucket of retired particles, after every real cell
            if flags[i] & 1:
                if is_finite3(x[i]):
                    c = cell_index(cell_coord(x[i], lower, inv_cell, res), res)
                else:
                    flags[i] = 0
                    x[i] = vec3(0.0)
                    ti.atomic_add(counters[nonfinite], 1)
            cell_id[i] = c
            rank[i] = ti.atomic_add(count[c], 1)


@ti.func
def _move_slot(i, k, x: ti.template(), v: ti.template(), ids: ti.template(), flags: ti.template(),
               x_out: ti.template(), v_out: ti.template(), ids_out: ti.template(), flags_out: ti.template()):
    """Slot i's position, velocity, id and flags to slot k of the sorted copy."""
    x_out[k] = x[i]
    v_out[k] = v[i]
    ids_out[k] = ids[i]
    flags_out[k] = flags[i]


@ti.func
def _carry(i, k, flags: ti.template(), a: ti.template(), a_out: ti.template()):
    """Slot i's carried field (state.Carried) to slot k, zeroed for a retired particle: a particle
    emitted into its slot starts from zero."""
    value = ti.zero(a[i])
    if flags[i] & ACTIVE:
        value = a[i]
    a_out[k] = value


@ti.kernel
def _scatter(
    cell_id: nd_i32, rank: nd_i32, start: nd_i32, x: nd_vec3, v: nd_vec3, ids: nd_i32, flags: nd_i32,
    x_out: nd_vec3, v_out: nd_vec3, ids_out: nd_i32, flags_out: nd_i32,
):
    """Every slot's position, velocity, id and flags to its sorted place, for a method that keeps
    nothing else from one substep to the next (WCSPH): 32 bytes a particle."""
    # an uncounted slot's "cell" is n_cells + 1, whose start is the number counted, the slots in
    # use: it lands where it was
    for i in x:
        _move_slot(i, start[cell_id[i]] + rank[i], x, v, ids, flags, x_out, v_out, ids_out, flags_out)


@ti.kernel
def _scatter_carrying_one(
    cell_id: nd_i32, rank: nd_i32, start: nd_i32, x: nd_vec3, v: nd_vec3, ids: nd_i32, flags: nd_i32,
    x_out: nd_vec3, v_out: nd_vec3, ids_out: nd_i32, flags_out: nd_i32, a: nd_any, a_out: nd_any,
):
    """_scatter, and one field a method registered (PBF's x0, DFSPH's kappa)."""
    for i in x:
        k = start[cell_id[i]] + rank[i]
        _move_slot(i, k, x, v, ids, flags, x_out, v_out, ids_out, flags_out)
        _carry(i, k, flags, a, a_out)


@ti.kernel
def _scatter_carrying_two(
    cell_id: nd_i32, rank: nd_i32, start: nd_i32, x: nd_vec3, v: nd_vec3, ids: nd_i32, flags: nd_i32,
    x_out: nd_vec3, v_out: nd_vec3, ids_out: nd_i32, flags_out: nd_i32, a: nd_any, a_out: nd_any,
    b: nd_any, b_out: nd_any,
):
    """_scatter, and two fields a method registered."""
    for i in x:
        k = start[cell_id[i]] + rank[i]
        _move_slot(i, k, x, v, ids, flags, x_out, v_out, ids_out, flags_out)
        _carry(i, k, flags, a, a_out)
        _carry(i, k, flags, b, b_out)


# the scatter for each number of fields that the methods registered (state.ParticleState.carry): a
# kernel's parameters are fixed when it is written, and one launch moves them all
SCATTER = (_scatter, _scatter_carrying_one, _scatter_carrying_two)
assert len(SCATTER) == MAX_CARRIED + 1


class NeighborGrid:
    """A dense grid over the domain box, with cells h / CELLS_X long in x and h wide in y and z."""

    BYTES_PER_PARTICLE = 2 * 4  # cell id, rank
    LIST_BYTES_PER_PARTICLE = 4 * (MAX_NEIGHBORS + 1)  # a stored list and its length

    def __init__(self, lower, upper, h: float, capacity: int, scan: tuple[int, int, bool] | None = None,
                 counters=None, nonfinite: int = 0, lists: bool = True):
        """``counters[nonfinite]`` (an i32 array) counts the particles that the sort retires for a
        position not finite (see _assign_cells): the solver's frame counters, or the grid's own.
        ``lists``: store each particle's neighbours after every sort (neighbors.build_lists), where the
        budget leaves the memory for them; without, every pass walks the rows."""
        self.lower = np.asarray(lower, np.float32)
        self.h = float(h)
        self.cell, self.res = self.layout(lower, upper, h)
        self.n_cells = int(np.prod(self.res.astype(np.int64)))
        if self.n_cells > 2**31 - 2:
            raise ValueError(f"neighbour grid of {self.res.tolist()} cells is too large; raise the particle radius")
        # [origin, 1 / cell size] and the cells per axis, as arrays (see boundary.BoundaryArgs.params)
        self.origin = ti.ndarray(vec3, 2)
        self.origin.from_numpy(np.stack([self.lower, 1.0 / self.cell]).astype(np.float32))
        self.shape = ti.ndarray(ivec3, 1)
        self.shape.from_numpy(self.res[None, :].astype(np.int32))
        # the cells' counts and first slots, + the bucket of retired particles (scan.CellScan)
        self.scan = CellScan(self.n_cells + 1, scan)
        self.count, self.cell_start = self.scan.count, self.scan.start
        self.cell_id = ti.ndarray(ti.i32, capacity)
        self.rank = ti.ndarray(ti.i32, capacity)
        if counters is None:
            counters = ti.ndarray(ti.i32, nonfinite + 1)
            counters.fill(0)
        self.counters, self.nonfinite = counters, int(nonfinite)
        self.lists = bool(lists)
        # without lists, one length of -1 (for_each_neighbor reads a length only for i below its size)
        self.neighbors = ti.ndarray(ti.i32, capacity * MAX_NEIGHBORS if lists else 1)
        self.neighbor_count = ti.ndarray(ti.i32, capacity if lists else 1)
        self.neighbor_count.fill(-1)

    @staticmethod
    def layout(lower, upper, h: float) -> tuple[np.ndarray, np.ndarray]:
        """(cell size, cells per axis) of the grid over the box: h / CELLS_X long in x, h wide."""
        extent = np.asarray(upper, np.float64) - np.asarray(lower, np.float32)
        cell = np.array([h / CELLS_X, h, h])
        return cell, np.maximum(np.ceil(extent / cell).astype(np.int32), 1)

    def args(self) -> tuple:
        """The grid's kernel arguments, in GridArgs order after the positions."""
        return (self.cell_start, self.origin, self.shape, self.h, self.neighbors, self.neighbor_count)

    def build(self, state: ParticleState, dispatch=launch_now) -> None:
        """Count, scan and scatter: sort the particle state by cell (five kernel launches on a CPU,
        six for a million particles on a GPU, whose scan has more levels), then store each
        particle's neighbours (neighbors.build_lists). The scatter moves x, v, ids and flags, and the fields
        the method registered (state.carried), in one launch."""
        dispatch(
            _assign_cells, state.x, state.flags, state.free_head, self.cell_id, self.rank, self.count,
            self.origin, self.shape, self.n_cells, self.counters, self.nonfinite,
        )
        self.scan.run(dispatch, state.free_head)
        back = state.back
        carried = [buffer for field in state.carried for buffer in (field.front, field.back)]
        dispatch(
            SCATTER[len(state.carried)], self.cell_id, self.rank, self.cell_start,
            state.x, state.v, state.ids, state.flags, back.x, back.v, back.ids, back.flags, *carried,
        )
        state.swap()
        if self.lists:
            dispatch(build_lists, state.x, state.flags, state.free_head, *self.args())

    def cell_start_numpy(self) -> np.ndarray:
        return self.cell_start.to_numpy()
