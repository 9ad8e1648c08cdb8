"""Synthetic depth frames with known people: the obstacles must be where the people are."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.tracking.conftest import empty_background, nearest
from waterrock.snapshots import ObstacleSnapshot
from waterrock.tracking.frame import CorruptFrame, Frame
from waterrock.tracking.pipeline import HAND_IDS_FROM, DepthPipeline
from waterrock.tracking.segment import DepthBackground
from waterrock.tracking.synthetic import SyntheticScript, SyntheticSource


def head_in_view(src: SyntheticSource, truth, margin_px: float = 40.0) -> bool:
    k = src.calibration.intrinsics
    ((u, v),) = src.calibration.world_to_pixel(truth.position + [0.0, truth.height, 0.0])[0]
    return margin_px < u < k.width - margin_px and margin_px < v < k.height - margin_px


def run(src: SyntheticSource, pipeline: DepthPipeline) -> list[tuple[Frame, ObstacleSnapshot]]:
    return [(f, pipeline.process(f)) for f in src]


def test_walker_position_and_velocity_match_truth(settings_for):
    src = SyntheticSource("walk", loop=False)
    pipe = DepthPipeline(settings_for(src), src.calibration, empty_background(src))
    pos_err, vel_err, top_err, checked = [], [], [], 0
    in_view_since = None  # entering, only the body is seen: the velocity settles once the head is in
    for frame, snap in run(src, pipe):
        (truth,) = src.truth(frame.index)
        if not head_in_view(src, truth):
            in_view_since = None
            continue
        in_view_since = frame.index if in_view_since is None else in_view_since
        if frame.index < in_view_since + 8:
            continue
        assert len(snap) == 1, f"frame {frame.index}: {len(snap)} obstacles for one person"
        checked += 1
        pos_err.append(np.hypot(*(snap.a[0] - truth.position)[[0, 2]]))
        vel_err.append(np.linalg.norm(snap.velocity[0] - truth.velocity))
        top_err.append(abs(snap.b[0, 1] + snap.radius[0] - truth.height))
        assert abs(snap.a[0, 1] - snap.radius[0]) < 0.01, "the capsule must stand on the floor"
    assert checked >= 60
    assert max(pos_err) < 0.02, f"position error up to {max(pos_err) * 100:.1f} cm"
    assert max(vel_err) < 0.05, f"velocity error up to {max(vel_err) * 100:.1f} cm/s"
    assert max(top_err) < 0.03, f"height error up to {max(top_err) * 100:.1f} cm"


def test_obstacle_appears_within_confirm_frames_and_velocity_answers_at_once(settings_for):
    src = SyntheticSource("walk", loop=False, frames=30)
    pipe = DepthPipeline(settings_for(src, confirm_frames=3), src.calibration, empty_background(src))
    counts = [len(snap) for _, snap in run(src, pipe)]
    # the walker is in view from frame 0: tentative for 2 frames, an obstacle from the 3rd
    assert counts[:2] == [0, 0] and all(c == 1 for c in counts[2:])


def test_two_people_crossing_keep_their_ids(settings_for):
    src = SyntheticSource("crossing", loop=False)
    pipe = DepthPipeline(settings_for(src), src.calibration, empty_background(src))
    owner: dict[int, set[int]] = {}
    frames_with_both = 0
    for frame, snap in run(src, pipe):
        truths = src.truth(frame.index)
        tpos = np.array([t.position for t in truths])
        for oid, a in zip(snap.ids, snap.a, strict=True):
            who, dist = nearest(tpos, a)
            assert dist < 0.1, f"frame {frame.index}: obstacle {oid} is {dist:.2f} m from anyone"
            owner.setdefault(int(oid), set()).add(who)
        frames_with_both += len(snap) == 2
    assert frames_with_both > 80
    assert len(owner) == 2, f"expected one id per person, got {owner}"
    assert all(len(people) == 1 for people in owner.values()), f"an id jumped between people: {owner}"


def test_hand_in_touch_band_is_a_sphere_at_the_hand(settings_for):
    src = SyntheticSource("reach", loop=False)
    pipe = DepthPipeline(settings_for(src), src.calibration, empty_background(src))
    touching, not_touching = [], []
    for frame, snap in run(src, pipe):
        (truth,) = src.truth(frame.index)
        hands = snap.select(snap.ids >= HAND_IDS_FROM)
        (touching if truth.hand is not None else not_touching).append((frame.index, truth, hands))
    # confirm_frames after the reach starts the sphere is there, and gone once the arm is down
    settled = [(i, t, h) for i, t, h in touching if i >= touching[0][0] + 3]
    assert len(settled) > 40
    for i, t, h in settled:
        assert len(h) == 1, f"frame {i}: {len(h)} hands"
        assert np.array_equal(h.a, h.b), "a hand is a sphere"
        assert np.linalg.norm(h.a[0] - t.hand) < 0.05, f"frame {i}: hand {h.a[0]} vs {t.hand}"
    late = [h for i, _, h in not_touching if i > touching[-1][0] + 15]
    assert late and all(len(h) == 0 for h in late)
    assert all(len(h) == 0 for i, _, h in not_touching if i < touching[0][0])


def test_background_learned_from_the_first_frames_then_people_found(settings_for):
    walk = SyntheticSource("walk", loop=False, frames=40)
    empty = SyntheticSource(SyntheticScript((), 1.0), camera=walk.calibration, loop=False, seed=7)
    pipe = DepthPipeline(settings_for(walk, background_frames=10), walk.calibration)
    for i in range(10):
        assert len(pipe.process(Frame(i / 30, depth=empty.render(i), index=i))) == 0
    assert pipe.ready
    snaps = [pipe.process(Frame(1 + f.timestamp, depth=f.depth, index=f.index)) for f in walk]
    assert sum(len(s) == 1 for s in snaps) >= 35


@pytest.mark.parametrize("frames, dropout", [(30, 0.002), (8, 0.4), (1, 0.1), (5, 0.7)])
def test_background_is_the_median_and_mad_of_valid_readings(frames, dropout):
    """DepthBackground.learn against numpy's nanmedian over the readings that are not 0, odd and
    even counts of them, pixels that never read and pixels valid in fewer than half the frames."""
    rng = np.random.default_rng(frames)
    stack = rng.normal(2000.0, 4.0, (frames, 48, 64)).astype(np.uint16)
    stack[rng.random(stack.shape) < dropout] = 0
    stack[:, :2, :2] = 0  # never read
    readings = np.where(stack > 0, stack, np.nan).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the never-read pixels: all NaN
        med = np.nanmedian(readings, axis=0)
        mad = np.nanmedian(np.abs(readings - med), axis=0)
    enough = (stack > 0).sum(0) * 2 >= frames
    bg = DepthBackground.learn(list(stack))
    np.testing.assert_array_equal(bg.depth, np.where(enough, med, 0).astype(np.float32))
    want_noise = np.where(enough, np.maximum(1.4826 * mad, 0.5), 0).astype(np.float32)
    np.testing.assert_allclose(bg.noise, want_noise, rtol=1e-6)
    assert (bg.depth[:2, :2] == 0).all() and (bg.depth > 0).any()


def test_background_file_round_trip(tmp_path, settings_for):
    src = SyntheticSource("walk", loop=False, frames=1)
    bg = empty_background(src)
    path = bg.save(tmp_path / "bg.npz")
    pipe = DepthPipeline(settings_for(src, background_file=path), src.calibration)
    assert pipe.ready
    np.testing.assert_array_equal(pipe.background.depth, bg.depth)


def test_zero_depth_pixels_are_not_people(settings_for):
    src = SyntheticSource("walk", loop=False, frames=1, dropout=0.0, noise_mm=0.0)
    pipe = DepthPipeline(settings_for(src), src.calibration, empty_background(src))
    empty = SyntheticSource(SyntheticScript((), 1.0), camera=src.calibration, loop=False).render(0)
    empty[100:200, 100:300] = 0  # a black coat absorbs the IR: no reading, not a person
    body, _ = pipe.segmenter.segment(empty)
    assert body.max() == 0


@pytest.mark.parametrize(
    "bad",
    [
        Frame(0.0, depth=np.zeros((480, 640), np.uint16)),
        Frame(0.0, depth=np.full((480, 640), np.nan, np.float32)),
        Frame(0.0, depth=np.ones((240, 320), np.uint16)),
        Frame(0.0, depth=np.ones((480, 640, 3), np.uint16)),
        Frame(0.0, depth=None),
    ],
)
def test_corrupt_frames_raise_corrupt_frame(bad, settings_for):
    src = SyntheticSource("walk", loop=False, frames=1)
    pipe = DepthPipeline(settings_for(src), src.calibration, empty_background(src))
    with pytest.raises(CorruptFrame):
        pipe.process(bad)
