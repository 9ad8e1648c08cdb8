"""The renderer's quality knobs (``Renderer.set_quality``), which a frame-rate governor turns:
a smaller light buffer upsampled to the output, shorter trails, fewer trails. Shorter and fewer
trails draw what a renderer built with them draws, the smaller buffer comes close to the full
picture, and undoing them gives back the full picture at once, the trails' history and all.

What they buy on a software renderer (llvmpipe, LLVM 15, 2 cores shared with other work, so
within about 20 %): 1280x720, 20 000 trails of K = 32 over the sphere rock (the waterfall of
conftest, 50 frames in), ms per ``render`` fenced by ``ctx.finish()``, median of 12 frames taken
in 3 rounds through every setting in turn. Not asserted: a figure for the governor's order.

=====================  ===========  ========  =======
scale, length, share   segments     pipeline  compute
=====================  ===========  ========  =======
1, 32, 1               413 706      1010      2035
0.75, 32, 1            413 706       934      1423
0.5, 32, 1             413 706       924       945
1, 16, 1               239 253       607      1241
1, 32, 0.5             207 333       533       992
0.5, 16, 0.5           119 971       263       314
1, share -> 0          1              12.5      31
0.5, share -> 0        1              10.2      16
=====================  ===========  ========  =======

The pipeline's lines cost llvmpipe per segment (four vertex shader runs, each reading three or
four ring positions), hardly per pixel, so the scale buys it little there and the trails' length
and share buy it in proportion; the compute rasterizer's cost is per pixel, and the scale halves
it. Upsampling bilinearly costs about 3 ms a frame more than a texel fetch at scale 1 (15.6
against 12.5 with no lines), hence the compose pass's compiled variant for scales below 1.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.render.conftest import sphere_rock, waterfall
from waterrock.render.renderer import Quality, Renderer
from waterrock.render.settings import RenderSettings
from waterrock.render.target import OffscreenTarget
from waterrock.render.trails import chosen
from waterrock.snapshots import ParticleSnapshot

SIZE = (320, 180)
N = 3000       # particles
K = 24         # positions kept per trail
SHARE = 0.5    # the scene's [render.trails] share
FRAMES = 40


@pytest.fixture(scope="module")
def snapshots():
    return list(waterfall(N, FRAMES, seed=7))


def circling(n: int, frames: int) -> list[ParticleSnapshot]:
    """Particles going round circles of 0.1 to 0.3 m, a quarter turn in five frames: trails that
    bend at every joint."""
    rng = np.random.default_rng(3)
    centre = rng.uniform((-1.0, -0.6, -0.2), (1.0, 0.8, 0.2), (n, 3))
    radius, phase = rng.uniform(0.1, 0.3, n), rng.uniform(0.0, 2 * np.pi, n)
    out = []
    for frame in range(frames):
        angle = phase + frame * np.pi / 10
        positions = centre + radius[:, None] * np.c_[np.cos(angle), np.sin(angle), np.zeros(n)]
        velocities = radius[:, None] * np.c_[-np.sin(angle), np.cos(angle), np.zeros(n)] * 6 * np.pi
        out.append(ParticleSnapshot(frame=frame, time=frame / 60, positions=positions.astype(np.float32),
                                    velocities=velocities.astype(np.float32), ids=np.arange(n, dtype=np.int32),
                                    recycled=np.zeros(n, bool)))
    return out


def settings(length: int = K, share: float = SHARE, rasterizer: str = "pipeline", **lines) -> RenderSettings:
    lines = {"width": 6.0, "width_slow": 3.0, **lines}  # at 180 lines: 1 and 0.5 px
    return RenderSettings(
        resolution=SIZE, trails={"share": share, "length": length}, projection={"height": 2.6, "elevation_deg": 15.0},
        lines={**lines, "rasterizer": rasterizer},
    )


def renderer(target: OffscreenTarget, s: RenderSettings) -> Renderer:
    r = Renderer(target.ctx, s, SIZE, sphere_rock(), N)
    if s.lines.rasterizer == "compute" and r.lines.rasterizer != "compute":
        r.release()
        pytest.skip(f"compute shaders need OpenGL 4.3; this context has {target.ctx.version_code}")
    return r


def picture(r: Renderer, target: OffscreenTarget) -> np.ndarray:
    r.render(target.framebuffer)
    return r.read_pixels().astype(int)


def fed(r: Renderer, snapshots) -> Renderer:
    for snapshot in snapshots:
        r.update(snapshot)
    return r


@pytest.mark.gl
def test_a_share_draws_the_slots_the_hash_chooses(gl_ctx, snapshots):
    with OffscreenTarget(SIZE, gl_ctx) as target, fed(renderer(target, settings()), snapshots) as r:
        everything = len(r.trails.read_segments(drawn=True)[0])
        r.set_quality(share=0.5)
        trails = r.trails
        m = trails.drawn_slots
        ids = np.flatnonzero(chosen(np.arange(N), 0.5 * SHARE))
        assert m == ids.size and np.array_equal(np.sort(trails.id_of_slot[:m]), ids)
        live = np.flatnonzero(trails.lengths[:m] >= 2)  # the instances: the drawn trails with a segment
        assert trails.live_count == live.size and trails.segments == live.size * (K - 1)
        _, _, slot = trails.read_segments(drawn=True)
        assert slot.max() < m
        assert abs(len(slot) / everything - 0.5) < 0.06, f"{len(slot)} of {everything} segments drawn"
        assert len(trails.read_segments()[0]) == everything  # the others are kept, not drawn


@pytest.mark.gl
@pytest.mark.parametrize("rasterizer", ["pipeline", "compute"])
def test_a_share_draws_what_a_smaller_scene_share_draws(gl_ctx, snapshots, rasterizer):
    with OffscreenTarget(SIZE, gl_ctx) as target:
        with fed(renderer(target, settings(rasterizer=rasterizer)), snapshots) as r:
            full = picture(r, target)
            r.set_quality(share=0.5)
            part = picture(r, target)
        with fed(renderer(target, settings(share=0.5 * SHARE, rasterizer=rasterizer)), snapshots) as r:
            expected = picture(r, target)
    assert np.abs(part - expected).max() <= 1
    assert np.abs(part - full).max(axis=2).mean() > 1.0  # and it is not the full picture


@pytest.mark.gl
def test_b_length_draws_the_newest_positions_of_each_trail(gl_ctx, snapshots):
    length = 8
    with OffscreenTarget(SIZE, gl_ctx) as target, fed(renderer(target, settings()), snapshots) as r:
        r.set_quality(length=length)
        trails = r.trails
        assert trails.segments == np.count_nonzero(trails.lengths[: trails.capacity] >= 2) * (length - 1)
        a, b, slot = trails.read_segments(drawn=True)
        n = trails.lengths[: trails.capacity]
        assert np.array_equal(np.bincount(slot, minlength=trails.capacity), np.maximum(np.minimum(n, length) - 1, 0))
        # the newest ones: each drawn segment is one of the stored ones, and every trail's head is drawn
        sa, sb, sslot = trails.read_segments()
        stored = {(int(s), *x, *y) for s, x, y in zip(sslot, sa.round(6), sb.round(6), strict=True)}
        assert all((int(s), *x, *y) in stored for s, x, y in zip(slot, a.round(6), b.round(6), strict=True))
        assert (n > 1).sum() == np.unique(slot).size


@pytest.mark.gl
@pytest.mark.parametrize("rasterizer", ["pipeline", "compute"])
def test_b_length_draws_what_a_shorter_ring_draws(gl_ctx, snapshots, rasterizer):
    """Wide lines on bending trails, neither tapered nor faded, so that the tail's miter shows: it
    has no older neighbour to turn towards."""
    length, bending = 8, circling(200, 30)
    look = {"width": 30.0, "width_slow": 30.0, "taper": 0.0, "fade": 0.0}
    with OffscreenTarget(SIZE, gl_ctx) as target:
        with fed(renderer(target, settings(rasterizer=rasterizer, **look)), bending) as r:
            r.set_quality(length=length)
            short = picture(r, target)
        with fed(renderer(target, settings(length=length, rasterizer=rasterizer, **look)), bending) as r:
            expected = picture(r, target)
    assert np.abs(short - expected).max() <= 1


@pytest.mark.gl
@pytest.mark.parametrize("rasterizer", ["pipeline", "compute"])
def test_c_half_scale_is_close_to_the_full_picture(gl_ctx, snapshots, rasterizer):
    with OffscreenTarget(SIZE, gl_ctx) as target, renderer(target, settings(rasterizer=rasterizer)) as r:
        full = picture(fed(r, snapshots), target)
        r.set_quality(scale=0.5)
        assert r.light_size == (160, 90) and r.size == SIZE
        half = picture(r, target)
    assert half.shape == full.shape
    diff = np.abs(full - half).max(axis=2)
    assert diff.mean() < 8.0, f"mean difference {diff.mean():.2f} levels"
    lit_full, lit_half = (full.max(axis=2) > 40).mean(), (half.max(axis=2) > 40).mean()
    assert lit_full > 0.1  # there is a waterfall to compare
    assert abs(lit_half / lit_full - 1.0) < 0.1, f"lit {lit_half:.3f} of the picture, at full scale {lit_full:.3f}"
    # the lines keep their width on screen: about the same light, not a quarter or four times it
    assert abs(half.sum() / full.sum() - 1.0) < 0.05


@pytest.mark.gl
def test_d_full_quality_again_is_the_full_picture(gl_ctx, snapshots):
    """Lowered for half the frames, then raised: the trails kept every position meanwhile."""
    with OffscreenTarget(SIZE, gl_ctx) as target, fed(renderer(target, settings()), snapshots) as reference:
        expected = picture(reference, target)
        with renderer(target, settings()) as r:
            fed(r, snapshots[: FRAMES // 2])
            trails, light = r.trails, r._light
            r.set_quality(length=6, share=0.3)
            assert r._light is light  # only a new scale makes a new light buffer
            r.set_quality(0.5, 6, 0.3)
            assert r.quality == Quality(0.5, 6, 0.3)
            for snapshot in snapshots[FRAMES // 2 :]:
                r.update(snapshot)
                lowered = picture(r, target)
            r.set_quality(1.0, K, 1.0)
            assert r.trails is trails and r.quality == Quality(1.0, K, 1.0) and r.light_size == SIZE
            again = picture(r, target)
    assert np.abs(lowered - expected).max(axis=2).mean() > 1.0
    assert np.array_equal(again, expected)


@pytest.mark.gl
def test_quality_out_of_range_is_refused_and_kept_for_new_trails(gl_ctx, snapshots):
    with OffscreenTarget(SIZE, gl_ctx) as target, Renderer(target.ctx, settings(), SIZE) as r:
        r.set_quality(0.75, 10, 0.5)
        for bad in ({"scale": 0.2}, {"scale": 1.5}, {"length": 1}, {"length": K + 1}, {"share": 0.0}, {"share": 1.1}):
            with pytest.raises(ValueError):
                r.set_quality(**bad)
        assert r.quality == Quality(0.75, 10, 0.5)
        r.update(snapshots[0])  # the trails are made now, for the ids seen, and draw as set
        assert r.trails.drawn_length == 10 and r.trails.drawn_share == 0.5
        assert r.light_size == (240, 135)
        r.set_quality()
        assert r.quality == Quality(1.0, K, 1.0) and r.trails.drawn_slots == r.trails.capacity
