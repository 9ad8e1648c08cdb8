"""Trails keep their identity through the solver's reordering and never jump across the scene."""

from __future__ import annotations

import numpy as np
import pytest

from waterrock.render.trails import TrailBuffer, chosen
from waterrock.snapshots import ParticleSnapshot

STEP = 0.01  # m per frame along x


def snapshot(frame: int, ids, positions, recycled=None) -> ParticleSnapshot:
    ids = np.asarray(ids, np.int32)
    positions = np.asarray(positions, np.float32).reshape(-1, 3)
    return ParticleSnapshot(
        frame=frame, time=frame / 60, positions=positions, velocities=np.zeros_like(positions),
        ids=ids, recycled=np.zeros(len(ids), bool) if recycled is None else np.asarray(recycled, bool),
    )


def marching(frame: int, ids: np.ndarray) -> np.ndarray:
    """Each particle on its own row (y = id), moving +x by STEP per frame."""
    return np.c_[np.full(len(ids), frame * STEP), ids.astype(float), np.zeros(len(ids))]


def test_choice_is_by_id_stable_and_close_to_the_share():
    ids = np.arange(200_000)
    pick = chosen(ids, 0.1)
    assert abs(pick.mean() - 0.1) < 0.005
    order = np.random.default_rng(1).permutation(ids)
    assert np.array_equal(chosen(order, 0.1), pick[order])
    assert chosen(ids, 1.0).all()
    assert (chosen(ids, 0.05) <= pick).all()  # a smaller share is a subset: trails never swap


@pytest.mark.gl
def test_trails_follow_ids_through_reordering(gl_ctx):
    trails = TrailBuffer(gl_ctx, max_particles=64, share=1.0, length=8)
    rng = np.random.default_rng(0)
    ids = np.arange(64)
    for frame in range(12):
        order = rng.permutation(ids)
        trails.update(snapshot(frame, order, marching(frame, order)))
    a, b, slot = trails.read_segments()
    assert len(a) == 64 * 7  # K-1 segments per full trail
    assert np.allclose(a - b, (STEP, 0, 0), atol=1e-6)  # every segment joins one particle's steps
    assert np.array_equal(trails.slot_of[trails.id_of_slot], np.arange(trails.capacity))
    assert np.allclose(a[:, 1], trails.id_of_slot[slot])  # and stays on that slot's particle's row
    trails.release()


@pytest.mark.gl
def test_only_newest_positions_are_uploaded(gl_ctx):
    trails = TrailBuffer(gl_ctx, max_particles=1000, share=0.5, length=40)
    # newest position and speed, its packing, the lengths, the live list
    assert trails.upload_bytes == trails.row_width * trails.rows * (16 + 4 + 4 + 4)
    assert trails.upload_bytes < trails.capacity * 40 * 16 / 10
    trails.release()


@pytest.mark.gl
def test_recycled_particle_never_draws_across_the_scene(gl_ctx):
    trails = TrailBuffer(gl_ctx, max_particles=4, share=1.0, length=16)
    ids = np.arange(4)
    for frame in range(10):
        trails.update(snapshot(frame, ids, marching(frame, ids)))
    # Particle 2 is retired at x ~ 0.1 and re-emitted 5 m away in the same frame.
    pos = marching(10, ids)
    pos[2] = (5.0, 2.0, 0.0)
    trails.update(snapshot(10, ids, pos, recycled=ids == 2))
    for frame in range(11, 14):
        pos = marching(frame, ids)
        pos[2] = (5.0 + (frame - 10) * STEP, 2.0, 0.0)
        trails.update(snapshot(frame, ids, pos))
    a, b, slot = trails.read_segments()
    longest = np.linalg.norm(a - b, axis=1).max()
    assert longest <= STEP + 1e-6, f"a segment of {longest} m: the trail jumped"
    assert (slot == trails.slot_of[2]).sum() == 3  # its fresh trail: 4 positions, 3 segments
    trails.release()


@pytest.mark.gl
def test_vanished_particle_stops_drawing_and_returns_fresh(gl_ctx):
    trails = TrailBuffer(gl_ctx, max_particles=4, share=1.0, length=8)
    ids = np.arange(4)
    for frame in range(6):
        trails.update(snapshot(frame, ids, marching(frame, ids)))
    rest = ids[ids != 1]
    trails.update(snapshot(6, rest, marching(6, rest)))
    _, _, slot = trails.read_segments()
    assert trails.slot_of[1] not in slot
    # Back 1 m further on, unflagged: still no segment joins it to where it vanished.
    pos = marching(7, ids)
    pos[1, 0] += 1.0
    trails.update(snapshot(7, ids, pos))
    a, b, _ = trails.read_segments()
    assert np.linalg.norm(a - b, axis=1).max() <= STEP + 1e-6
    trails.release()


@pytest.mark.gl
def test_ids_outside_the_budget_are_ignored(gl_ctx):
    trails = TrailBuffer(gl_ctx, max_particles=4, share=1.0, length=8)
    trails.update(snapshot(0, [0, 7, -1], np.zeros((3, 3))))
    assert trails.lengths[: trails.capacity].tolist() == [1, 0, 0, 0]
    trails.release()
