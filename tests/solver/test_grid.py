"""The counting-sort grid finds exactly the pairs a brute-force search finds, in each form of the
neighbour loop: the lists stored after the sort (a list that overflowed walking the rows), and
the rows themselves."""

from typing import NamedTuple

import numpy as np
import pytest
import taichi as ti
from scipy.spatial import cKDTree

from waterrock.solver.grid import NeighborGrid
from waterrock.solver.launch import on_cpu
from waterrock.solver.neighbors import MAX_NEIGHBORS, GridArgs, for_each_neighbor, walk_rows
from waterrock.solver.state import ACTIVE, ParticleState
from waterrock.solver.types import nd_i32, nd_ivec3, nd_vec3, vec3

ivec4 = ti.math.ivec4  # four hashes of a neighbour set (the solver has no use for the type)
nd_ivec4 = ti.types.ndarray(dtype=ivec4, ndim=1)


class _Ids(NamedTuple):
    ids: object


@ti.func
def _signature_task(i, j, r: vec3, ret: ti.template(), c: ti.template()):
    # four integer hashes of the neighbour's id: equal sums mean equal neighbour sets
    jid = c.ids[j]
    ret[0] += 1
    ret[1] += jid
    ret[2] += (jid * 7919) % 10007
    ret[3] += (jid % 101) * (jid % 103)


@ti.kernel
def _neighbour_signature(
    x: nd_vec3, ids: nd_i32, flags: nd_i32, out: nd_ivec4,
    cell_start: nd_i32, g_origin: nd_vec3, g_shape: nd_ivec3, h: ti.f32, g_list: nd_i32, g_count: nd_i32,
    form: ti.template(),
):
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h, g_list, g_count))
    c = ti.static(_Ids(ids))
    for i in x:
        acc = ivec4(0)
        if flags[i] & ACTIVE:
            if ti.static(form == "lists"):
                for_each_neighbor(i, x[i], g, _signature_task, acc, c)
            else:
                walk_rows(i, x[i], g, _signature_task, acc, c)
        out[ids[i]] = acc


@pytest.mark.parametrize("form", ["lists", "rows"], ids=["stored lists", "rows"])
def test_grid_matches_brute_force(form):
    rng = np.random.default_rng(3)
    lower, upper, h = np.zeros(3), np.array([0.5, 0.3, 0.4]), 0.05
    n_active, capacity = 3000, 3500
    pts = rng.uniform(lower, upper, (n_active, 3)).astype(np.float32)
    pts[:50] = pts[50:100] + 1e-4  # near-duplicates
    pts[100:110] = upper - 1e-6  # on the far faces
    pts[200:300] = rng.uniform(0.2, 0.2 + h / 4, (100, 3))  # a clump: more neighbours than a list holds
    state = ParticleState(capacity)
    state.load(pts)
    grid = NeighborGrid(lower, upper, h, capacity)
    grid.build(state)

    # the sort is a permutation: every id once, active ones first, cells in order
    ids = state.ids.to_numpy()
    assert sorted(ids.tolist()) == list(range(capacity))
    flags = state.flags.to_numpy()
    assert np.all(flags[:n_active] & ACTIVE) and not np.any(flags[n_active:] & ACTIVE)
    assert state.free_head.to_numpy()[0] == n_active
    np.testing.assert_array_equal(state.x.to_numpy()[:n_active][np.argsort(ids[:n_active])], pts)

    out = ti.ndarray(ivec4, capacity)
    out.fill(0)
    _neighbour_signature(state.x, state.ids, state.flags, out, *grid.args(), form)
    got = out.to_numpy()[:n_active]
    counts = grid.neighbor_count.to_numpy()[:n_active]
    assert (counts == -1).sum() >= 100 and (counts > 10).mean() > 0.9  # the clump overflowed; the rest are listed

    # brute force on the same float32 positions, strict < h as in the solver; each particle is its
    # own neighbour (the SPH sums run over j = i too)
    tree = cKDTree(pts.astype(np.float64))
    pairs = tree.query_pairs(h * (1 + 1e-6), output_type="ndarray")
    d2 = np.sum((pts[pairs[:, 0]] - pts[pairs[:, 1]]).astype(np.float32) ** 2, axis=1)
    pairs = pairs[d2 < np.float32(h) * np.float32(h)]
    want = np.zeros((n_active, 4), np.int64)
    self_pairs = np.repeat(np.arange(n_active)[:, None], 2, axis=1)
    for i_col, j_col in ((pairs[:, 0], pairs[:, 1]), (pairs[:, 1], pairs[:, 0]), (self_pairs[:, 0], self_pairs[:, 1])):
        jid = j_col.astype(np.int64)
        np.add.at(want, i_col, np.stack(
            [np.ones_like(jid), jid, (jid * 7919) % 10007, (jid % 101) * (jid % 103)], axis=1))
    np.testing.assert_array_equal(got[:, 0], want[:, 0])  # same neighbour counts
    np.testing.assert_array_equal(got, want)  # same neighbour sets
    assert want[:, 0].mean() > 10 and want[:, 0].max() > MAX_NEIGHBORS


@pytest.mark.parametrize("scan", [(2, 2, False), (32, 32, False), (5, 300, False)])
def test_the_gpus_scan_of_many_levels_sorts_as_the_cpus(scan):
    """The cells' prefix sum in a GPU's short blocks, over several levels (scan_suits_backend),
    leaves the same cell starts and the same order of particles as the CPU's one level."""
    rng = np.random.default_rng(5)
    lower, upper, h = np.zeros(3), np.array([0.6, 0.35, 0.3]), 0.05
    pts = rng.uniform(lower, upper, (2500, 3)).astype(np.float32)
    got = {}
    for name, how in (("cpu", None), ("levels", scan)):
        state = ParticleState(3000)
        state.load(pts)
        grid = NeighborGrid(lower, upper, h, 3000, scan=how)
        for _ in range(2):  # the second build starts from the counts the first one zeroed
            grid.build(state)
        start = grid.cell_start_numpy()
        # each particle's cell, by where it lies in the sorted order (the order inside a cell is
        # the atomics' and may differ)
        cell = np.searchsorted(start, np.arange(2500), side="right") - 1
        in_cells = sorted(zip(cell.tolist(), state.ids.to_numpy()[:2500].tolist(), strict=True))
        got[name] = (start, in_cells, state.free_head.to_numpy()[0], len(grid.scan.levels))
    assert got["cpu"][3] == 2 and got["levels"][3] >= 3
    np.testing.assert_array_equal(got["levels"][0], got["cpu"][0])
    assert got["levels"][1] == got["cpu"][1]
    assert got["levels"][2] == got["cpu"][2] == 2500


def test_the_lists_are_laid_out_particle_major_on_a_cpu():
    """On a CPU a particle's list is one run of MAX_NEIGHBORS slots (a thread walks it a cache line
    at a time), holding the particle itself and its neighbours; a GPU's is neighbour-major."""
    assert on_cpu()  # the tests run on Taichi's CPU backend; lavapipe runs the GPU's layout (test_backends)
    rng = np.random.default_rng(1)
    pts = rng.uniform(0.0, 0.2, (400, 3)).astype(np.float32)
    state = ParticleState(500)
    state.load(pts)
    grid = NeighborGrid(np.zeros(3), np.full(3, 0.2), 0.05, 500)
    grid.build(state)
    counts = grid.neighbor_count.to_numpy()
    lists = grid.neighbors.to_numpy().reshape(500, MAX_NEIGHBORS)
    x = state.x.to_numpy()
    assert np.all(counts[:400] > 0) and np.all(counts[400:] == -1)  # an idle slot, if filled, walks the rows
    for i in range(0, 400, 37):
        mine = lists[i, : counts[i]]
        assert i in mine
        assert np.all(np.sum((x[mine] - x[i]) ** 2, axis=1) < 0.05**2)
