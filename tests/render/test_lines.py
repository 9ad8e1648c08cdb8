"""Pixels: a known trail lights the right pixels and no others; the rock hides what is behind it;
a re-emitted particle draws no line across the picture."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from waterrock.render.renderer import Renderer
from waterrock.render.settings import RenderSettings
from waterrock.render.target import OffscreenTarget
from waterrock.snapshots import ParticleSnapshot

SIZE = (64, 64)
K = 8
LIT, DARK = 100, 12

# Black background, white opaque lines 3.2 px wide at 64 px (54 px at 1080), no taper or fade,
# a front view with 2 m over the picture's height: world (x, y) -> pixel (32 + 32x, 32 - 32y).
TEST_LOOK = RenderSettings(
    resolution=SIZE,
    background=(0, 0, 0),
    exposure=3.0,
    trails={"share": 1.0, "length": K},
    lines={"color": (1, 1, 1), "color_fast": (1, 1, 1), "width": 54, "width_slow": 54,
           "opacity": 1.0, "opacity_slow": 1.0, "taper": 0.0, "fade": 0.0},
    rock={"color": (0, 0, 0), "contour_spacing": 0.0},
    projection={"elevation_deg": 0.0, "height": 2.0},
)


def one_particle(frame: int, xyz, recycled: bool = False, pid: int = 0) -> ParticleSnapshot:
    return ParticleSnapshot(
        frame=frame, time=frame / 60, positions=np.array([xyz], np.float32),
        velocities=np.zeros((1, 3), np.float32), ids=np.array([pid], np.int32), recycled=np.array([recycled]),
    )


def draw(snapshots, rock: trimesh.Trimesh | None = None, settings: RenderSettings = TEST_LOOK) -> np.ndarray:
    with OffscreenTarget(SIZE) as target, Renderer(target.ctx, settings, SIZE, rock, max_particles=4) as r:
        for s in snapshots:
            r.update(s)
        r.render(target.framebuffer)
        return r.read_pixels().max(axis=2)


def horizontal(z: float = 0.0):
    # From x = -0.5 to +0.5 at y = 0 in K positions: pixel columns 16..48 on the row 31/32 border.
    return [one_particle(f, (-0.5 + f / (K - 1), 0.0, z)) for f in range(K)]


@pytest.mark.gl
def test_known_line_lights_the_right_pixels_only():
    img = draw(horizontal())
    assert (img[31:33, 18:47] > LIT).all(), "the line's core is missing"
    # The line spans columns 16..48 and rows 30.4..33.6: nothing beyond a pixel of margin.
    mask = np.zeros(img.shape, bool)
    mask[29:35, 15:50] = True
    assert (img[~mask] < DARK).all(), f"light outside the line: {np.argwhere(img * ~mask >= DARK)[:5]}"
    assert (img[26:29] < DARK).all() and (img[35:38] < DARK).all()


@pytest.mark.gl
def test_line_is_anti_aliased_not_jagged():
    # A line on a half-pixel position: its border rows get partial coverage, neither 0 nor full.
    img = draw([one_particle(f, (-0.5 + f / (K - 1), 0.5 / 32, 0.0)) for f in range(K)])
    column = img[:, 32].astype(int)
    partial = (column > DARK) & (column < column.max() - 20)
    assert partial.sum() >= 2


@pytest.mark.gl
def test_rock_hides_the_water_behind_it_only():
    slab = trimesh.creation.box(extents=(0.5, 0.5, 0.1))
    behind, front = draw(horizontal(z=-1.0), slab), draw(horizontal(z=1.0), slab)
    assert (behind[31:33, 18:24] > LIT).all() and (behind[31:33, 41:47] > LIT).all()
    assert (behind[31:33, 26:38] < DARK).all(), "water behind the rock shows through it"
    assert (front[31:33, 18:47] > LIT).all()


@pytest.mark.gl
def test_recycled_particle_draws_no_line_across_the_picture():
    # Falling at the left edge, then re-emitted at the right edge: the middle must stay dark.
    frames = [one_particle(f, (-0.8, 0.6 - 0.05 * f, 0.0)) for f in range(6)]
    frames.append(one_particle(6, (0.8, 0.6, 0.0), recycled=True))
    frames += [one_particle(f, (0.8, 0.6 - 0.05 * (f - 6), 0.0)) for f in range(7, 10)]
    img = draw(frames)
    assert (img[:, 12:52] < DARK).all(), "a line joins the particle's old and new places"
    assert (img[:, 5:8] > LIT).sum() == 0  # its old trail is gone
    assert (img[:, 56:60] > LIT).any()  # its new one is drawn


@pytest.mark.gl
def test_read_pixels_before_render_is_an_error(gl_ctx):
    with Renderer(gl_ctx, TEST_LOOK, SIZE) as r, pytest.raises(RuntimeError):
        r.read_pixels()


@pytest.mark.gl
def test_perspective_debug_camera_draws_the_same_line_at_the_centre_plane():
    perspective = TEST_LOOK.model_copy(
        update={"projection": TEST_LOOK.projection.model_copy(update={"mode": "perspective"})}
    )
    img = draw(horizontal(), settings=perspective)
    assert (img[31:33, 18:47] > LIT).all()
    assert (img[:26] < DARK).all() and (img[38:] < DARK).all()


@pytest.mark.gl
def test_bent_trail_has_no_bright_beads_at_its_joints():
    # Mitred joints: consecutive quads share their corners, so additive light never doubles.
    dim = TEST_LOOK.model_copy(update={"exposure": 0.5})
    turn = np.radians(np.linspace(200, 340, K))
    arc = [one_particle(f, (0.6 * np.cos(a), 0.6 * np.sin(a) + 0.3, 0.0)) for f, a in enumerate(turn)]
    bent, straight = draw(arc, settings=dim), draw(horizontal(), settings=dim)
    assert bent.max() <= straight.max() + 2
    assert (bent > LIT // 2).sum() > 60  # and the arc is drawn


@pytest.mark.gl
def test_budget_taken_from_snapshots_when_not_given(gl_ctx):
    with Renderer(gl_ctx, TEST_LOOK, SIZE) as r:
        r.update(one_particle(0, (0, 0, 0), pid=100))
        first = r.trails.max_particles
        r.update(one_particle(1, (0, 0, 0), pid=5000))  # beyond it: the table grows once
        assert first >= 101 and r.trails.max_particles >= 5001
        assert r.trails.lengths[r.trails.slot_of[5000]] == 1
