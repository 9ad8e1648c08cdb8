"""The neighbour grid: a dense uniform grid rebuilt every substep by counting sort.

Build (Green 2010, "Particle simulation using CUDA"; Hoetzlein 2014, "Fast fixed-radius nearest
neighbors: interactive million-particle fluids"): every particle counts itself into its cell
(with an atomic that also hands it its rank inside the cell), an exclusive prefix sum of the
counts gives each cell's first slot, and a scatter moves the particle data to
``cell_start[cell] + rank``. After the scatter, the particles of a cell, and of a row of cells
along x, are contiguous in memory, which is what makes the neighbour loop cache-friendly.

Cells are h / CELLS_X long along x and h wide in y and z, so the sphere of radius h around a
particle lies in 3 x 3 rows of cells along x, and each row is one contiguous range of sorted
particles. Each row is cut to the x-extent of the sphere's chord through it (a row wholly
farther than h is skipped): about 116 candidates for the ~33 neighbours of a particle at rest,
where the 27 cubic cells of side h hold 216. Thinner cells in y and z too (h / 2) would leave
84 candidates but 25 rows, whose set-up costs more than the candidates saved (measured).

Retired (inactive) particles are counted into one extra bucket past the last cell, so the sort
also compacts the active particles to the front: ``cell_start[n_cells]`` is the number of
active particles, read on the device by the emitters, never by the host inside a substep. The
slots past those in use (state.in_use) are all retired and stay where they are, uncounted: the
default scene's 10,000 idle slots in a budget of 12,000 took two threads' atomics on one
counter, a tenth of its frame.

:func:`for_each_neighbor` is the neighbour loop of the solver: every physics term is a small
task function ``task(i, j, r_ij, ret, ctx)`` called for each neighbour j of i within h, i included.
It has two forms, and the pair form a third:
- the lists stored right after the sort (build_lists, DESIGN.md), which every pass of the substep
  reads: the rows' candidates, three for each neighbour, are tested once a substep, not once a
  pass (measured on 2 cores at 16k: a PBF substep 68.8 -> 49.3 ms, a DFSPH one 62.1 -> 42.3);
- the rows themselves (walk_rows): what builds the lists, and what a particle whose list
  overflowed, or a grid whose budget leaves no memory for lists, walks in every pass;
- :func:`for_each_pair` walks the rows in pair form, every pair once (Newton's third law), on a
  CPU with many particles (pairs_suit): a term written as a pair task serves both (pair_as_task).
"""

import math
from typing import NamedTuple

import numpy as np
import taichi as ti

from waterrock.solver.launch import launch_now
from waterrock.solver.state import ACTIVE, ParticleState, in_use

SCAN_BLOCK = 1024  # values per thread of the cells' prefix sum on a CPU (see scan_suits_backend)
GPU_SCAN_BLOCK = 128  # and on a GPU
CELLS_X = 4  # cells per support radius along x (see the module's docstring)
MAX_NEIGHBORS = 64  # a stored list's length: 256 bytes a particle (DESIGN.md); about 33 at rest, 42 seen at most
BLOCK_ROWS = 2  # rows of cells along y in a block of the pair form (see pairs_in_block)
PAIR_COLOURS = 4  # kernels per pass in the pair form (see pairs_in_block)
BLOCK_GRAIN = 512  # loop iterations per block task (see pair_tasks)
vec3 = ti.math.vec3
ivec3 = ti.math.ivec3
nd_i32 = ti.types.ndarray(dtype=ti.i32, ndim=1)
nd_vec3 = ti.types.ndarray(dtype=vec3, ndim=1)
nd_vec2 = ti.types.ndarray(dtype=ti.math.vec2, ndim=1)
nd_ivec3 = ti.types.ndarray(dtype=ivec3, ndim=1)


class GridArgs(NamedTuple):
    """What the neighbour loop needs, bundled inside a kernel with ``ti.static(GridArgs(...))``."""

    x: object  # positions, sorted by cell
    cell_start: object  # first particle of each cell; cell_start[c + 1] is one past its last
    origin: object  # [grid origin, 1 / cell size] (vec3 array: see boundary.BoundaryArgs.params)
    shape: object  # [cells per axis] (ivec3 array)
    h: object  # support radius
    neighbors: object  # the substep's stored lists, MAX_NEIGHBORS a particle (see build_lists)
    neighbor_count: object  # each list's length; -1: walk the rows (a list overflowed, or none stored)


@ti.func
def is_finite3(a: vec3) -> bool:
    """Whether a position or velocity is one to simulate: NaN fails every comparison, and the
    bound also catches inf and values that would overflow soon (or a cell index, see cell_coord)."""
    return ti.abs(a.x) < 1e18 and ti.abs(a.y) < 1e18 and ti.abs(a.z) < 1e18


@ti.func
def _clamped_cell(u, n):
    """floor(u) as a cell index within [0, n - 1], whatever u is: clamped as a float first, so that
    a coordinate far outside the grid does not overflow the integer, and as an integer after, so
    that a NaN (whose conversion is undefined: INT_MIN on x86) lands inside too. An index read
    outside the grid's arrays is a segfault with nothing in the log."""
    c = ti.cast(ti.floor(ti.math.clamp(u, 0.0, ti.cast(n - 1, ti.f32))), ti.i32)
    return ti.math.clamp(c, 0, n - 1)


@ti.func
def cell_coord(p: vec3, lower: vec3, inv_cell: vec3, res: ivec3) -> ivec3:
    u = (p - lower) * inv_cell
    return ivec3(_clamped_cell(u.x, res.x), _clamped_cell(u.y, res.y), _clamped_cell(u.z, res.z))


@ti.func
def cell_index(c: ivec3, res: ivec3) -> ti.i32:
    # x fastest: the cells of a row along x are neighbours in memory
    return (c.z * res.y + c.y) * res.x + c.x


@ti.func
def _gap(local: ti.f32, d: ti.template(), cell: ti.f32) -> ti.f32:
    """Distance along one axis from a point at ``local`` in its cell to the cell d = -1, 0, 1 away
    (0 for a point that has moved past the shared face since the sort, see for_each_pair)."""
    g = 0.0
    if ti.static(d > 0):
        g = ti.max(cell - local, 0.0)
    elif ti.static(d < 0):
        g = ti.max(local, 0.0)
    return g


def on_cpu() -> bool:
    """Whether the kernels run on a CPU: the lists' layout (_list_slot) and the pair form
    (pairs_suit) depend on it."""
    return ti.lang.impl.current_cfg().arch in (ti.x64, ti.arm64)


@ti.func
def for_each_neighbor(i, xi: vec3, g: ti.template(), task: ti.template(), ret: ti.template(), ctx: ti.template()):
    """Call ``task(i, j, xi - x_j, ret, ctx)`` for every particle j with |xi - x_j| < h, i itself
    included: from i's stored list, or its rows (walk_rows).

    The sums of SPH run over j = i too: a density's self term is m_i W(0), and every term in a
    gradient or a difference (grad W(0) = 0, v_i - v_i = 0) vanishes there by itself. Not
    testing j != i saves a fifth of the instructions of a candidate (measured: the scan 8 %
    faster).

    Where the substep's sort stored i's list (build_lists), the loop walks it: the candidates of
    the rows were tested once, right after the sort, for every pass of the substep to read. The
    test |r| < h stays, for PBF, whose passes move the particles after the sort (an almost always
    taken branch: the lists hold the neighbours at the sort). A list that overflowed, or a grid
    without lists (a budget they would not fit in memory), walks the rows."""
    n = -1
    if g.neighbor_count.shape[0] > i:
        n = g.neighbor_count[i]
    if n >= 0:
        h2 = g.h * g.h
        for k in range(n):
            j = g.neighbors[_list_slot(i, k, g)]
            r = xi - g.x[j]
            if r.norm_sqr() < h2:
                task(i, j, r, ret, ctx)
    else:
        walk_rows(i, xi, g, task, ret, ctx)


@ti.func
def _list_slot(i, k, g: ti.template()):
    """Where i's k-th neighbour is stored: particle-major on a CPU (a thread walks one particle's
    list, a cache line at a time), neighbour-major on a GPU (a warp's k-th neighbours side by side,
    one transaction)."""
    slot = 0
    if ti.static(on_cpu()):
        slot = i * MAX_NEIGHBORS + k
    else:
        slot = k * g.neighbor_count.shape[0] + i
    return slot


@ti.kernel
def build_lists(x: nd_vec3, flags: nd_i32, free_head: nd_i32, cell_start: nd_i32, g_origin: nd_vec3,
                g_shape: nd_ivec3, h: ti.f32, neighbors: nd_i32, neighbor_count: nd_i32):
    """Right after the sort, each particle's neighbours within h (itself included) into its list,
    from its rows; a particle with more than MAX_NEIGHBORS
    (water pressed hard against a wall) keeps -1 and walks the rows in every pass."""
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h, neighbors, neighbor_count))
    for i in range(in_use(free_head, x)):
        n = -1  # an idle slot: a particle emitted into it before the next sort walks the rows
        if flags[i] & ACTIVE:
            n = 0
            walk_rows(i, x[i], g, _store_neighbor, n, g)
        neighbor_count[i] = n if n <= MAX_NEIGHBORS else -1


@ti.kernel
def _forget_lists(x: nd_vec3, free_head: nd_i32, neighbor_count: nd_i32):
    for i in range(in_use(free_head, x)):
        neighbor_count[i] = -1


@ti.func
def _store_neighbor(i, j, r: vec3, n: ti.template(), g: ti.template()):
    if n < MAX_NEIGHBORS:
        g.neighbors[_list_slot(i, n, g)] = j
    n += 1


@ti.func
def _home(xi: vec3, g: ti.template()):
    """x_i's cell, and x_i's place inside its cell's row (y and z within [0, h))."""
    lower, inv_cell, res = g.origin[0], g.origin[1], g.shape[0]
    c = cell_coord(xi, lower, inv_cell, res)
    return c, xi - lower - g.h * ti.cast(c, ti.f32)


@ti.func
def _row_span(xi: vec3, c: ivec3, local: vec3, dy: ti.template(), dz: ti.template(), g: ti.template()):
    """The sorted particles [a, b) of the row of cells (c.y + dy, c.z + dz) that may lie within h
    of x_i: the row cut to the x-extent of the sphere's chord through it; empty where the row is
    outside the grid or wholly farther than h."""
    lower, inv_cell, res = g.origin[0], g.origin[1], g.shape[0]
    cy = c.y + dy
    cz = c.z + dz
    # distance from x_i to the row, in y and in z: 0 for its own, else to the shared face
    gy = _gap(local.y, dy, g.h)
    gz = _gap(local.z, dz, g.h)
    chord2 = g.h * g.h - gy * gy - gz * gz
    a = 0
    b = 0
    if 0 <= cy < res.y and 0 <= cz < res.z and chord2 > 0.0:
        chord = ti.sqrt(chord2)
        # each end clamped into the row: x_i may have moved outside the grid since the sort (PBF
        # moves the particles between its passes), or become NaN there
        x_lo = _clamped_cell((xi.x - chord - lower.x) * inv_cell.x, res.x)
        x_hi = _clamped_cell((xi.x + chord - lower.x) * inv_cell.x, res.x)
        row = (cz * res.y + cy) * res.x
        a = g.cell_start[row + x_lo]
        b = g.cell_start[row + x_hi + 1]
    return a, b


@ti.func
def walk_rows(i, xi: vec3, g: ti.template(), task: ti.template(), ret: ti.template(), ctx: ti.template()):
    """The neighbour loop over the grid's 3 x 3 rows, with the test |r| < h as a branch. It had a
    second form on a CPU, which gathered the neighbours in a register window before running the
    tasks so that the branch was not mispredicted (a pass 30 % faster); with the lists, the rows
    are walked once a substep (build_lists) and that form no longer pays its way."""
    h2 = g.h * g.h
    c, local = _home(xi, g)
    for dz in ti.static(range(-1, 2)):
        for dy in ti.static(range(-1, 2)):
            a, b = _row_span(xi, c, local, dy, dz, g)
            for j in range(a, b):
                r = xi - g.x[j]
                if r.norm_sqr() < h2:
                    task(i, j, r, ret, ctx)


def pair_as_task(pair_task):
    """The task of for_each_neighbor that a pair task (for_each_pair) makes: j's share is
    dropped, and the compiler drops the work that only it needed."""

    @ti.func
    def task(i, j, r: vec3, ret: ti.template(), ctx: ti.template()):
        dropped = ti.zero(ret)
        pair_task(i, j, r, ret, dropped, ctx)

    return task


def pairs_suit(n_active: int, pairs_from: int) -> bool:
    """Whether a solver's sums take the pair form (for_each_pair): on a CPU, from ``pairs_from``
    active particles, each solver's own figure. Each pass in pair form is six kernels with a
    barrier between each, and its blocks of rows hold very different numbers of particles: the
    fewer the particles, the less the pairs save against that. A GPU, with thousands of threads
    and hardware atomics, always gathers."""
    return on_cpu() and n_active >= pairs_from


@ti.func
def _blocks(g: ti.template(), colour):
    """The blocks of one colour along z and along y (see pairs_in_block)."""
    res = g.shape[0]
    n_y = (res.y + BLOCK_ROWS - 1) // BLOCK_ROWS
    return (res.z + 1 - colour % 2) // 2, (n_y + 1 - colour // 2) // 2


@ti.func
def pair_tasks(g: ti.template(), colour) -> ti.i32:
    """The length of a pair kernel's outermost loop, whose iteration t calls pairs_in_block: one
    task per block of the colour, BLOCK_GRAIN iterations each, of which the first does the work.
    Taichi's CPU backend hands a thread at least 512 iterations of a loop at once
    (cpu_block_dim_adaptive), so a loop over the blocks themselves would run on one thread."""
    n_z, n_y = _blocks(g, colour)
    return n_z * n_y * BLOCK_GRAIN


@ti.kernel
def clear_sums(share: ti.types.ndarray(), cell_start: nd_i32):
    """Zero the active particles' sums before a pass's first colour (see pairs_in_block)."""
    for i in range(cell_start[cell_start.shape[0] - 2]):  # cell_start[n_cells]: the active count
        share[i] = ti.zero(share[i])


def pair_pass(dispatch, kernel, share, cell_start, *args, cleared: bool = False) -> None:
    """The sums of a pass in pair form: ``share`` cleared (unless an earlier kernel of the
    substep has zeroed the active particles' share, ``cleared``), then ``kernel(*args, colour)``
    for each colour, in order (see pairs_in_block)."""
    if not cleared:
        dispatch(clear_sums, share, cell_start)
    for colour in range(PAIR_COLOURS):
        dispatch(kernel, *args, colour)


@ti.func
def pairs_in_block(t, colour, g: ti.template(), pair_task: ti.template(), share: ti.template(), ctx: ti.template()):
    """Iteration t of a pair kernel's outermost loop (see pair_tasks): the pairs of the particles
    of one block of rows, each particle's sums ending in ``share``.

    A block is BLOCK_ROWS rows of cells along y in a slab of cells along z: contiguous particles.
    Its pairs add to its own rows, the next row in y, and the rows next to those in the next slab
    (for_each_pair), so blocks two slabs or two blocks apart never add to the same particle.
    Coloured by the parity of their slab and of their place along y, the blocks of one colour run
    in parallel, plain writes and all, and four kernels, one per colour, take every pair once."""
    if t % BLOCK_GRAIN == 0:
        res = g.shape[0]
        _, n_y = _blocks(g, colour)
        k = t // BLOCK_GRAIN
        cz = 2 * (k // n_y) + colour % 2
        y0 = (2 * (k % n_y) + colour // 2) * BLOCK_ROWS
        y1 = ti.min(y0 + BLOCK_ROWS, res.y)
        for cy in range(y0, y1):
            row = (cz * res.y + cy) * res.x
            for i in range(g.cell_start[row], g.cell_start[row + res.x]):
                ret = ti.zero(share[i])
                for_each_pair(i, g.x[i], ti.math.ivec2(cy, cz), g, pair_task, ret, share, ctx)
                share[i] = share[i] + ret


@ti.func
def for_each_pair(i, xi: vec3, row: ti.math.ivec2, g: ti.template(), pair_task: ti.template(), ret: ti.template(),
                  share: ti.template(), ctx: ti.template()):
    """The neighbour loop in pair form: every pair of neighbours once, as a serial SPH code does
    with Newton's third law. i visits the half of its neighbourhood that follows it, which holds
    about half the candidates: the particles after it in its own row, the row above it (+y) in
    its slab, and the three rows of the next slab (+z). For each neighbour j,
    ``pair_task(i, j, r, ret, t, ctx)`` adds to i's sums in ``ret`` and to j's in ``t``, which go
    to ``share[j]`` in memory; i's own term (j = i, r = 0) goes to i alone. A pair task
    evaluates a pair's kernel once for both (see pair_as_task for the gather form).

    The writes to share[j] are plain, not atomic: a kernel runs the blocks of one colour, one
    thread each, which no other thread then touches (pairs_in_block). For that, and for every
    pair to be taken at most once, i's half is that of the row it was sorted into, ``row`` =
    (cy, cz), not of where it is now: PBF moves the particles between its passes, and a particle
    that has crossed into the next row would otherwise take pairs that are another's, or write
    outside its block.

    The test |r| < h is a branch: with half the candidates, a register window of the candidates
    (as the rows' walk once had) costs more than the mispredictions it saves (measured: WCSPH's two pair passes 12 %
    slower with it). Measured single-threaded at 16k particles, a WCSPH substep takes 8.0 ms in
    pair form and 11.8 ms gathering."""
    h2 = g.h * g.h
    c, _ = _home(xi, g)
    c.y, c.z = row.x, row.y
    local = xi - g.origin[0] - g.h * ti.cast(c, ti.f32)  # y and z from the row's faces
    own = ti.zero(ret)  # i's own term reaches i once
    pair_task(i, i, vec3(0.0), ret, own, ctx)
    for dz in ti.static(range(0, 2)):
        for dy in ti.static(range(-1, 2)):
            if ti.static(dz == 1 or dy >= 0):
                a, b = _row_span(xi, c, local, dy, dz, g)
                if ti.static(dz == 0 and dy == 0):
                    a = i + 1  # its own row: only the particles after i
                for j in range(a, b):
                    r = xi - g.x[j]
                    if r.norm_sqr() < h2:
                        t = ti.zero(ret)
                        pair_task(i, j, r, ret, t, ctx)
                        share[j] = share[j] + t


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


@ti.kernel
def _block_sums(values: nd_i32, n: ti.i32, sums: nd_i32, block: ti.i32):
    """sums[b] = the sum of values[b * block : (b + 1) * block], the first n values."""
    for b in sums:
        s = 0
        for k in range(b * block, ti.min((b + 1) * block, n)):
            s += values[k]
        sums[b] = s


@ti.kernel
def _scan_serial(sums: nd_i32):
    """The exclusive scan of the top level, in place, on one thread."""
    ti.loop_config(serialize=True)
    acc = 0
    for b in range(sums.shape[0]):
        s = sums[b]
        sums[b] = acc
        acc += s


@ti.func
def _scan_block(values: ti.template(), n, b, block, offset):
    """Block b of values, in place, by its exclusive scan from ``offset``."""
    acc = offset
    for k in range(b * block, ti.min((b + 1) * block, n)):
        s = values[k]
        values[k] = acc
        acc += s


@ti.kernel
def _scan_in_blocks(values: nd_i32, n: ti.i32, offsets: nd_i32, block: ti.i32):
    """The exclusive scan of a middle level, in place: each block of values scanned from its
    offset, the scanned sum of the blocks before it."""
    for b in offsets:
        _scan_block(values, n, b, block, offsets[b])


@ti.kernel
def _scan_in_blocks_from_top(values: nd_i32, n: ti.i32, top: nd_i32, block: ti.i32):
    """_scan_in_blocks whose offsets come from the short top level, not yet scanned: each block
    sums the top's values before its own (at most a block of them), where a scan of the top on
    one thread would be one launch more (on an H100 a launch costs the stream tens of
    microseconds besides its kernel)."""
    for b in top:
        acc = 0
        for c in range(b):
            acc += top[c]
        _scan_block(values, n, b, block, acc)


@ti.kernel
def _block_scan(count: nd_i32, n: ti.i32, sums: nd_i32, start: nd_i32, free_head: nd_i32, block: ti.i32):
    """Exclusive scan inside each block, offset by the block's scanned sum; start[n] = total.
    The counts are zeroed for the next build as they are read, and the free head is set: the
    retired particles' bucket, the last, starts after the active ones."""
    for b in sums:
        acc = sums[b]
        for k in range(b * block, ti.min((b + 1) * block, n)):
            start[k] = acc
            acc += count[k]
            count[k] = 0
        if (b + 1) * block >= n:
            start[n] = acc
            free_head[0] = start[n - 1]


WARP = 32  # CUDA's warp: the lanes that trade values with shuffles


@ti.func
def _warp_inclusive_sum(lane, value):
    """The sum of ``value`` over the lanes 0..lane of the warp (Hillis & Steele 1986's scan in
    five shuffles). Every lane of the warp must take part."""
    s = value
    for d in ti.static([1, 2, 4, 8, 16]):
        up = ti.simt.warp.shfl_up_i32(ti.u32(0xFFFFFFFF), s, d)
        if lane >= d:
            s += up
    return s


@ti.kernel
def _warp_sums(count: nd_i32, sums: nd_i32):
    """sums[w] = the sum of the counts of warp w's 32 cells, one cell a thread (CUDA). The counts
    are padded to whole warps, so every lane of a warp runs the loop alike."""
    ti.loop_config(block_dim=4 * WARP)
    for i in count:
        s = _warp_inclusive_sum(i % WARP, count[i])
        if i % WARP == WARP - 1:
            sums[i // WARP] = s


@ti.kernel
def _warp_scan(count: nd_i32, n: ti.i32, sums: nd_i32, start: nd_i32, free_head: nd_i32):
    """_block_scan with a warp for a block (CUDA): each cell's exclusive sum from its warp's
    scanned offset and the counts of the lanes before it, every cell on a thread of its own."""
    ti.loop_config(block_dim=4 * WARP)
    for i in count:
        c = count[i]
        first = sums[i // WARP] + _warp_inclusive_sum(i % WARP, c) - c
        if i < n:
            start[i] = first
            count[i] = 0
        if i == n - 1:
            start[n] = first + c
            free_head[0] = first


def scan_suits_backend() -> tuple[int, int, bool]:
    """(block, top, warps) of the cells' prefix sum: each thread scans ``block`` values serially,
    level over level, until a level of at most ``top`` values is scanned on one thread; with
    ``warps`` (CUDA), the cells themselves are scanned a warp at a time with shuffles, one cell a
    thread, and the levels start from the warps' sums.

    A CPU's few threads each take long blocks, and one thread scans all the block sums (1,465 of
    them for a million cells). A GPU needs thousands of threads, each with a short serial loop:
    with 1,024-value blocks and one serial top level, the scan of the 1.5M cells of a million
    particles took 0.65 ms on an H100, 42 % of a WCSPH substep's kernel time (Taichi's kernel
    profiler), the serial top level 0.2 ms of it. In 128-value blocks over three levels, 0.18 ms,
    of which the cells' level took 0.14: each thread reads and writes its block's cells one after
    another, 512 bytes from its neighbour's, where a warp's shuffles let its lanes read and
    write adjacent cells at once."""
    if on_cpu():
        return SCAN_BLOCK, 1 << 30, False
    if ti.lang.impl.current_cfg().arch == ti.cuda:
        # the warps' sums of a million particles' cells (47k) in one level of blocks: 367 sums,
        # which the level below sums up to itself (_scan_in_blocks_from_top), one launch fewer
        return GPU_SCAN_BLOCK, 4 * GPU_SCAN_BLOCK, True
    return GPU_SCAN_BLOCK, GPU_SCAN_BLOCK, False


@ti.func
def _move_slot(i, k, x: ti.template(), v: ti.template(), ids: ti.template(), flags: ti.template(),
               x_out: ti.template(), v_out: ti.template(), ids_out: ti.template(), flags_out: ti.template()):
    """Slot i's position, velocity, id and flags to slot k of the sorted copy."""
    x_out[k] = x[i]
    v_out[k] = v[i]
    ids_out[k] = ids[i]
    flags_out[k] = flags[i]


@ti.kernel
def _scatter(
    cell_id: nd_i32, rank: nd_i32, start: nd_i32,
    x: nd_vec3, v: nd_vec3, x0: nd_vec3, kappa: nd_vec2, ids: nd_i32, flags: nd_i32,
    x_out: nd_vec3, v_out: nd_vec3, x0_out: nd_vec3, kappa_out: nd_vec2, ids_out: nd_i32, flags_out: nd_i32,
):
    # an uncounted slot's "cell" is n_cells + 1, whose start is the number counted, the slots in
    # use: it lands where it was
    for i in x:
        k = start[cell_id[i]] + rank[i]
        _move_slot(i, k, x, v, ids, flags, x_out, v_out, ids_out, flags_out)
        x0_out[k] = x0[i]
        kappa_out[k] = kappa[i]


@ti.kernel
def _scatter_moving(
    cell_id: nd_i32, rank: nd_i32, start: nd_i32, x: nd_vec3, v: nd_vec3, ids: nd_i32, flags: nd_i32,
    x_out: nd_vec3, v_out: nd_vec3, ids_out: nd_i32, flags_out: nd_i32,
):
    """_scatter of positions, velocities, ids and flags alone, for a method that keeps nothing
    else from one substep to the next (WCSPH): 32 bytes a particle where _scatter moves 52."""
    for i in x:
        _move_slot(i, start[cell_id[i]] + rank[i], x, v, ids, flags, x_out, v_out, ids_out, flags_out)


class NeighborGrid:
    """A dense grid over the domain box, with cells h / CELLS_X long in x and h wide in y and z."""

    BYTES_PER_PARTICLE = 2 * 4  # cell id, rank
    LIST_BYTES_PER_PARTICLE = 4 * (MAX_NEIGHBORS + 1)  # a stored list and its length

    def __init__(self, lower, upper, h: float, capacity: int, scan: tuple[int, int, bool] | None = None,
                 counters=None, nonfinite: int = 0, lists: bool = True):
        """``counters[nonfinite]`` (an i32 array) counts the particles that the sort retires for a
        position not finite (see _assign_cells): the solver's frame counters, or the grid's own.
        ``lists``: store each particle's neighbours after every sort (build_lists), where the
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
        n = self.n_cells + 1  # + the bucket of retired particles
        self.scan_block, top, self.warps = scan_suits_backend() if scan is None else scan
        # the counts, padded to whole warps where warps scan them (zeros, never counted into)
        self.count = ti.ndarray(ti.i32, WARP * math.ceil(n / WARP) if self.warps else n)
        self.count.fill(0)  # and zeroed again by every scan
        self.cell_start = ti.ndarray(ti.i32, n + 1)
        # the block sums of each level of the scan: the counts' first, each level's after it
        self.levels = [n]
        while len(self.levels) == 1 or self.levels[-1] > top:
            block = WARP if self.warps and len(self.levels) == 1 else self.scan_block
            self.levels.append(math.ceil(self.levels[-1] / block))
        self.block_sums = [ti.ndarray(ti.i32, m) for m in self.levels[1:]]
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

    def build(self, state: ParticleState, dispatch=launch_now, moving_only: bool = False, lists: bool = True) -> None:
        """Count, scan and scatter: sort the particle state by cell (five kernel launches on a CPU,
        six for a million particles on a GPU, whose scan has more levels), then store each
        particle's neighbours (build_lists). With ``moving_only``, x0 and kappa are left behind
        (_scatter_moving). ``lists`` False: a substep whose sums all take the pair form reads no
        list, so none is built, and the old ones are forgotten (the rows would be walked)."""
        dispatch(
            _assign_cells, state.x, state.flags, state.free_head, self.cell_id, self.rank, self.count,
            self.origin, self.shape, self.n_cells, self.counters, self.nonfinite,
        )
        self.scan(dispatch, state.free_head)
        back = state.back
        if moving_only:
            dispatch(
                _scatter_moving, self.cell_id, self.rank, self.cell_start, state.x, state.v, state.ids, state.flags,
                back.x, back.v, back.ids, back.flags,
            )
        else:
            dispatch(
                _scatter, self.cell_id, self.rank, self.cell_start,
                state.x, state.v, state.x0, state.kappa, state.ids, state.flags,
                back.x, back.v, back.x0, back.kappa, back.ids, back.flags,
            )
        state.swap()
        if self.lists and lists:
            dispatch(build_lists, state.x, state.flags, state.free_head, *self.args())
        elif self.lists:
            dispatch(_forget_lists, state.x, state.free_head, self.neighbor_count)

    def scan(self, dispatch, free_head) -> None:
        """cell_start from the counts: the block sums level over level, the top level's scan (on
        one thread, or folded into the level below it), then each level scanned down from the one
        above it (the blocked scan of
        Blelloch 1990, "Prefix sums and their applications", applied again to its own sums)."""
        b, sums, levels = self.scan_block, self.block_sums, self.levels
        if self.warps:
            dispatch(_warp_sums, self.count, sums[0])
        else:
            dispatch(_block_sums, self.count, levels[0], sums[0], b)
        for k in range(1, len(sums)):
            dispatch(_block_sums, sums[k - 1], levels[k], sums[k], b)
        if len(sums) == 1:  # a CPU's long top level, or few cells
            dispatch(_scan_serial, sums[0])
        else:
            dispatch(_scan_in_blocks_from_top, sums[-2], levels[-2], sums[-1], b)
        for k in range(len(sums) - 2, 0, -1):
            dispatch(_scan_in_blocks, sums[k - 1], levels[k], sums[k], b)
        if self.warps:
            dispatch(_warp_scan, self.count, levels[0], sums[0], self.cell_start, free_head)
        else:
            dispatch(_block_scan, self.count, levels[0], sums[0], self.cell_start, free_head, b)

    def cell_start_numpy(self) -> np.ndarray:
        return self.cell_start.to_numpy()
