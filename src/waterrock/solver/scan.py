"""The cells' prefix sum: the exclusive scan of the grid's cell counts into each cell's first
slot, the middle step of the counting sort (grid.py). A blocked scan (Blelloch 1990, "Prefix sums
and their applications", applied again to its own sums): the block sums level over level, the
top level's scan (on one thread, or folded into the level below it), then each level scanned
down from the one above it; on CUDA the cells themselves a warp at a time, with shuffles. How
long the blocks are, and how many levels, depends on the backend (scan_suits_backend).
"""

import math

import taichi as ti

from waterrock.solver.launch import on_cpu
from waterrock.solver.types import nd_i32

SCAN_BLOCK = 1024  # values per thread of the cells' prefix sum on a CPU (see scan_suits_backend)
GPU_SCAN_BLOCK = 128  # and on a GPU
WARP = 32  # CUDA's warp: the lanes that trade values with shuffles


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


class CellScan:
    """The scan of ``n`` counts (the grid's cells and the retired particles' bucket) into
    ``start``, ``start[n]`` their total. As it reads the counts it zeroes them for the next sort,
    and it sets the free head: the retired particles' bucket, the last, starts after the active
    ones."""

    def __init__(self, n: int, how: tuple[int, int, bool] | None = None):
        """``how``: (block, top, warps), see scan_suits_backend, whose choice is the default."""
        self.block, top, self.warps = scan_suits_backend() if how is None else how
        # the counts, padded to whole warps where warps scan them (zeros, never counted into)
        self.count = ti.ndarray(ti.i32, WARP * math.ceil(n / WARP) if self.warps else n)
        self.count.fill(0)  # and zeroed again by every scan
        self.start = ti.ndarray(ti.i32, n + 1)
        # the block sums of each level of the scan: the counts' first, each level's after it
        self.levels = [n]
        while len(self.levels) == 1 or self.levels[-1] > top:
            block = WARP if self.warps and len(self.levels) == 1 else self.block
            self.levels.append(math.ceil(self.levels[-1] / block))
        self.block_sums = [ti.ndarray(ti.i32, m) for m in self.levels[1:]]

    def run(self, dispatch, free_head) -> None:
        """``start`` from the counts, level over level up, then down (see the module's docstring)."""
        b, sums, levels = self.block, self.block_sums, self.levels
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
            dispatch(_warp_scan, self.count, levels[0], sums[0], self.start, free_head)
        else:
            dispatch(_block_scan, self.count, levels[0], sums[0], self.start, free_head, b)
