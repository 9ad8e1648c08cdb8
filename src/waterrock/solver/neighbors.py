"""The neighbour loop of the solver: every physics term is a small task function
``task(i, j, r_ij, ret, ctx)`` called for each neighbour j of i within h, i included
(for_each_neighbor), over the particles that the grid (grid.py) has sorted by cell.

The cells are h / CELLS_X long along x and h wide in y and z (grid.NeighborGrid.layout) and
numbered x fastest (cell_index), so the sphere of radius h around a particle lies in 3 x 3 rows
of cells along x, and each row is one contiguous range of sorted particles. Each row is cut to
the x-extent of the sphere's chord through it (a row wholly farther than h is skipped): about 116
candidates for the ~33 neighbours of a particle at rest, where the 27 cubic cells of side h hold
216. Thinner cells in y and z too (h / 2) would leave 84 candidates but 25 rows, whose set-up
costs more than the candidates saved (measured).

The loop has two forms, each for one reason:
- the lists stored right after the sort (build_lists, DESIGN.md), read by every pass of the
  substep: a row's candidates, three for each neighbour, are tested once a substep, not once a
  pass (measured on 2 cores at 16k: a PBF substep 68.8 -> 49.3 ms, a DFSPH one 62.1 -> 42.3);
- the rows themselves (walk_rows): they build the lists, and serve in every pass a particle whose
  list overflowed, or a grid whose budget leaves no memory for lists.

The pair form, removed (issue 22). It took every pair once (Newton's third law) in coloured
blocks of rows, on a CPU from 8,000 active particles for WCSPH and 24,000 for PBF. Once each term
read i's own values once (with_own), gathering over the lists beat it. Measured on 2 cores, the
dam break, gather against pairs alternating in one process, median ms a substep: WCSPH 16k
5.7-5.8 / 7.7-8.5, 32k 11.5-11.6 / 13.2-13.7, 64k 22.4-22.9 / 21.9-22.8 (a tie), 128k
49.9-50.3 / 42.9-43.1 (the pairs 14 % faster there, the one size they still won); PBF 32k
23.8-24.1 / 53.4-60.5, 64k 45.9-46.9 / 101.7-105.8. One form fewer to keep in step with the
terms, and a term is one gather task that reads like its equation.
"""

from typing import NamedTuple

import taichi as ti

from waterrock.solver.launch import on_cpu
from waterrock.solver.state import ACTIVE, in_use
from waterrock.solver.types import ivec3, nd_i32, nd_ivec3, nd_vec3, vec3

MAX_NEIGHBORS = 64  # a stored list's length: 256 bytes a particle (DESIGN.md); about 33 at rest, 42 seen at most


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
def _clamped_cell(u, n):
    """floor(u) as a cell index within [0, n - 1], whatever u is: clamped as a float first, so that
    a coordinate far outside the grid does not overflow the integer, and as an integer after, so
    that a NaN (whose conversion is undefined: INT_MIN on x86) lands inside too. An index read
    outside the grid's arrays is a segfault with nothing in the log."""
    c = ti.cast(ti.floor(ti.math.clamp(u, 0.0, ti.cast(n - 1, ti.f32))), ti.i32)
    return ti.math.clamp(c, 0, n - 1)


@ti.func
def cell_coord(p: vec3, lower: vec3, inv_cell: vec3, res: ivec3) -> ivec3:
    """p's cell: the one the sort counts a particle into (grid._assign_cells), and the one whose
    rows the loop walks around it (_home)."""
    u = (p - lower) * inv_cell
    return ivec3(_clamped_cell(u.x, res.x), _clamped_cell(u.y, res.y), _clamped_cell(u.z, res.z))


@ti.func
def cell_index(c: ivec3, res: ivec3) -> ti.i32:
    # x fastest: the cells of a row along x are neighbours in memory
    return (c.z * res.y + c.y) * res.x + c.x


@ti.func
def _gap(local: ti.f32, d: ti.i32, cell: ti.f32) -> ti.f32:
    """Distance along one axis from a point at ``local`` in its cell to the cell d = -1, 0, 1 away
    (0 for a point outside its cell: one beyond the grid, whose cell is clamped into it)."""
    g = 0.0
    if d > 0:
        g = ti.max(cell - local, 0.0)
    elif d < 0:
        g = ti.max(local, 0.0)
    return g


def reads_own(ctx) -> bool:
    """Whether a term's context reads values of particle i in its task (see with_own)."""
    return hasattr(type(ctx), "read_own")


def with_own(ctx, own):
    """The context of a term for one particle i: ``ctx.own`` holds what the term reads of i, read
    once into locals before the loop over i's neighbours (``read_own``, a ti.func of (i, ctx) that
    each such context defines), where a task that read ``ctx.k[i]`` read it again for every
    neighbour: the read sat behind the test |r| < h (which the rows' walk still makes), out of
    which the compiler cannot lift a load it cannot prove safe. Measured on 2 cores at 16k
    particles: DFSPH's pressure_parameter 2.2 ms a pass with v[i] read in the task, 1.1 with it
    read once."""
    return ctx._replace(own=own)


@ti.func
def for_each_neighbor(i, xi: vec3, g: ti.template(), task: ti.template(), ret: ti.template(), ctx: ti.template()):
    """Call ``task(i, j, xi - x_j, ret, ctx)`` for every particle j with |xi - x_j| < h, i itself
    included (and for a listed one that PBF has moved past h since the sort): from i's stored
    list, or its rows (walk_rows); ``ctx.own`` holds what the task reads of i, read once
    (with_own).

    The sums of SPH run over j = i too: a density's self term is m_i W(0), and every term in a
    gradient or a difference (grad W(0) = 0, v_i - v_i = 0) vanishes there by itself. Not
    testing j != i saves a fifth of the instructions of a candidate (measured: the scan 8 %
    faster).

    Where the substep's sort stored i's list (build_lists), the loop walks it: the candidates of
    the rows were tested once, right after the sort, for every pass of the substep to read, and
    are not tested again. Only PBF moves particles between the sort and its passes, and a
    neighbour it has moved past h adds nothing: every term is weighted by W or grad W, which are
    exactly 0 from |r| = h on (kernels.py; tests/solver/test_kernels.py). Measured on 2 cores at
    16k, alternating runs: a DFSPH substep 14.4-14.8 -> 12.3-12.7 ms, WCSPH 5.8-6.2 -> 5.1-5.3
    without the test. A list that overflowed, or a grid without lists (a budget they would not
    fit in memory), walks the rows, testing each candidate."""
    if ti.static(reads_own(ctx)):
        own = ctx.read_own(i, ctx)
        _neighbors(i, xi, g, task, ret, ti.static(with_own(ctx, own)))
    else:
        _neighbors(i, xi, g, task, ret, ctx)


@ti.func
def _neighbors(i, xi: vec3, g: ti.template(), task: ti.template(), ret: ti.template(), ctx: ti.template()):
    n = -1
    if g.neighbor_count.shape[0] > i:
        n = g.neighbor_count[i]
    if n >= 0:
        for k in range(n):
            j = g.neighbors[_list_slot(i, k, g)]
            task(i, j, xi - g.x[j], ret, ctx)
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
            if ti.static(on_cpu()):
                c, local = _home(x[i], g)
                for dz in ti.static(range(-1, 2)):
                    for dy in ti.static(range(-1, 2)):
                        n = _store_row(i, x[i], c, local, dy, dz, g, n)
            else:
                walk_rows(i, x[i], g, _store_neighbor, n, g, unrolled=True)
        neighbor_count[i] = n if n <= MAX_NEIGHBORS else -1


@ti.func
def _store_row(i, xi: vec3, c: ivec3, local: vec3, dy: ti.i32, dz: ti.i32, g: ti.template(), n0: ti.i32) -> ti.i32:
    """A row's neighbours of i appended to its list (a CPU's, particle-major) without a branch:
    every candidate is written to the next free slot, which moves on only for a neighbour. About
    a third of a row's candidates are neighbours, so the branch of walk_rows guesses wrong often
    (measured on 2 cores at 16k: build_lists 7.9 -> 4.1-5.1 ms, alternating runs). A GPU, whose
    lists are neighbour-major, keeps the branch: each write there is a memory transaction."""
    h2 = g.h * g.h
    a, b = _row_span(xi, c, local, dy, dz, g)
    n = n0
    base = i * MAX_NEIGHBORS
    for j in range(a, b):
        r = xi - g.x[j]
        g.neighbors[base + ti.min(n, MAX_NEIGHBORS - 1)] = j
        n += ti.cast(r.norm_sqr() < h2, ti.i32)
    return n


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
def _row_span(xi: vec3, c: ivec3, local: vec3, dy: ti.i32, dz: ti.i32, g: ti.template()):
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
def walk_rows(i, xi: vec3, g: ti.template(), task: ti.template(), ret: ti.template(), ctx: ti.template(),
              unrolled: ti.template() = False):
    """The neighbour loop over the grid's 3 x 3 rows, with the test |r| < h as a branch. It had a
    second form on a CPU, which gathered the neighbours in a register window before running the
    tasks so that the branch was not mispredicted (a pass 30 % faster); with the lists, the rows
    are walked once a substep (build_lists) and that form no longer pays its way.

    The rows are a loop where the task is a physics term (a particle whose list overflowed): each
    unrolled row is one more copy of the task for Taichi to compile, and the nine copies took its
    front end 2.5 s of every start for PBF's passes alone. build_lists unrolls them, its task being
    one store (measured on 2 cores: 4.9 ms against 5.7 looped at 16k, 18.7 against 21.8 at 64k)."""
    c, local = _home(xi, g)
    if ti.static(unrolled):
        for dz in ti.static(range(-1, 2)):
            for dy in ti.static(range(-1, 2)):
                _walk_row(i, xi, c, local, dy, dz, g, task, ret, ctx)
    else:
        for stencil_row in range(9):  # a name apart from the callers' variables: a ti.func is inlined
            _walk_row(i, xi, c, local, stencil_row % 3 - 1, stencil_row // 3 - 1, g, task, ret, ctx)


@ti.func
def _walk_row(i, xi: vec3, c: ivec3, local: vec3, dy: ti.i32, dz: ti.i32, g: ti.template(), task: ti.template(),
              ret: ti.template(), ctx: ti.template()):
    h2 = g.h * g.h
    a, b = _row_span(xi, c, local, dy, dz, g)
    for j in range(a, b):
        r = xi - g.x[j]
        if r.norm_sqr() < h2:
            task(i, j, r, ret, ctx)
