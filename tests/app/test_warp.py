"""The projector pass: the corner-pin warp puts picture pixels where the homography says, and
the edge blend ramps so that two overlapping projectors add up to one light."""

from __future__ import annotations

import numpy as np
import pytest

from waterrock.render.warp import (
    apply_homography,
    blend_curve,
    blend_light,
    blend_value,
    corner_homography,
    inverse_homography,
)
from waterrock.scene import EdgeBlend, ProjectorOutput

CORNERS = ((0.12, 0.08), (0.93, 0.15), (0.85, 0.9), (0.05, 0.8))


def test_corner_homography_pins_the_corners():
    h = corner_homography(CORNERS)
    np.testing.assert_allclose(apply_homography(h, [[0, 0], [1, 0], [1, 1], [0, 1]]), CORNERS, atol=1e-6)
    inv = inverse_homography(h, CORNERS)
    np.testing.assert_allclose(apply_homography(inv, CORNERS), [[0, 0], [1, 0], [1, 1], [0, 1]], atol=1e-6)
    np.testing.assert_allclose(corner_homography(((0, 0), (1, 0), (1, 1), (0, 1))), np.eye(3), atol=1e-9)


def test_blend_curve_shape():
    x = np.linspace(0.0, 1.0, 101)
    f = blend_curve(x, 2.0)
    assert f[0] == 0.0 and f[-1] == 1.0 and f[50] == pytest.approx(0.5)
    assert np.all(np.diff(f) >= 0)
    np.testing.assert_allclose(f + blend_curve(1.0 - x, 2.0), 1.0, atol=1e-12)  # overlaps add to one
    assert blend_curve(0.1, 2.0) < 0.1 < blend_curve(0.1, 1.0) + 1e-12  # smooth: flat at the edge
    np.testing.assert_allclose(blend_curve(x, 1.0), x, atol=1e-12)  # power 1: linear


def test_two_projectors_overlap_to_one_light():
    """Left projector shows picture x in [0, 0.6], right one [0.4, 1]: across the overlap their
    lights (value ** gamma) add up to one."""
    w = 0.2 / 0.6  # the overlap, as a share of each region's width
    left = EdgeBlend(right=w, gamma=2.2)
    right = EdgeBlend(left=w, gamma=2.2)
    x = np.linspace(0.4, 0.6, 41)  # picture x across the overlap
    u_left, u_right = x / 0.6, (x - 0.4) / 0.6
    light = blend_value(u_left, 0.5, left) ** 2.2 + blend_value(u_right, 0.5, right) ** 2.2
    np.testing.assert_allclose(light, 1.0, atol=1e-9)
    assert blend_light(0.0, 0.5, right) == 0.0 and blend_light(0.5, 0.5, right) == 1.0


@pytest.fixture
def warp(gl_ctx):
    from waterrock.render.warp import WarpPass

    p = WarpPass(gl_ctx)
    yield p
    p.release()


def _draw(ctx, warp, picture_rgb: np.ndarray, out_size, output, **kw) -> np.ndarray:
    from waterrock.render.target import OffscreenTarget

    h, w = picture_rgb.shape[:2]
    tex = ctx.texture((w, h), 3, np.ascontiguousarray(picture_rgb[::-1]).tobytes(), alignment=1)
    import moderngl

    tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
    try:
        with OffscreenTarget(out_size, ctx) as target:
            warp.draw(target.framebuffer, out_size, tex, output, **kw)
            return target.read()
    finally:
        tex.release()


def test_warp_shader_puts_a_pixel_where_the_homography_says(gl_ctx, warp):
    """A picture black but for one white 4x4 square: after the warp the square's light lies where
    the homography takes the square's centre, and outside the pinned quad all is black."""
    pw, ph = 160, 120
    pic = np.zeros((ph, pw, 3), np.uint8)
    sx, sy = 100, 30  # top-left pixel of the square (y down)
    pic[sy : sy + 4, sx : sx + 4] = 255
    out_w, out_h = 320, 240
    img = _draw(gl_ctx, warp, pic, (out_w, out_h), ProjectorOutput(corners=CORNERS)).astype(float)

    centre_share = np.array([(sx + 2) / pw, (sy + 2) / ph])
    expected = apply_homography(corner_homography(CORNERS), centre_share)[0] * (out_w, out_h)
    lum = img.sum(axis=-1)
    assert lum.max() >= 3 * 250
    ys, xs = np.nonzero(lum > 0)
    found = np.array([np.average(xs + 0.5, weights=lum[ys, xs]), np.average(ys + 0.5, weights=lum[ys, xs])])
    np.testing.assert_allclose(found, expected, atol=1.0)

    # a white picture fills exactly the pinned quad
    white = _draw(gl_ctx, warp, np.full((ph, pw, 3), 255, np.uint8), (out_w, out_h), ProjectorOutput(corners=CORNERS))
    px = (np.stack(np.meshgrid(np.arange(out_w), np.arange(out_h)), -1).reshape(-1, 2) + 0.5) / (out_w, out_h)
    uv = apply_homography(inverse_homography(corner_homography(CORNERS), CORNERS), px).reshape(out_h, out_w, 2)
    margin = 2.0 / out_w
    inside = np.all((uv > margin) & (uv < 1 - margin), axis=-1)
    outside = np.any((uv < -margin) | (uv > 1 + margin), axis=-1)
    assert np.all(white[inside] == 255)
    assert np.all(white[outside] == 0)


def test_warp_shader_shows_its_region(gl_ctx, warp):
    """Region (0.5, 0, 1, 1) of a picture whose left half is red and right half blue: all blue."""
    pic = np.zeros((60, 80, 3), np.uint8)
    pic[:, :40, 0] = 255
    pic[:, 40:, 2] = 255
    img = _draw(gl_ctx, warp, pic, (64, 48), ProjectorOutput(region=(0.5, 0.0, 1.0, 1.0)))
    assert np.all(img[..., 2] == 255) and np.all(img[..., 0] == 0)


def test_warp_shader_blend_ramp_at_the_edge(gl_ctx, warp):
    """A white picture with a right-edge blend a quarter of the width wide: each column carries
    the ramp's value (to 8-bit rounding), 255 before the blend, falling to black at the edge."""
    out_w, out_h = 256, 16
    blend = EdgeBlend(right=0.25, gamma=2.2, power=2.0)
    img = _draw(gl_ctx, warp, np.full((16, 64, 3), 255, np.uint8), (out_w, out_h), ProjectorOutput(blend=blend))
    row = img[8, :, 1].astype(float)
    u = (np.arange(out_w) + 0.5) / out_w
    expected = 255.0 * blend_value(u, 0.5, blend)
    np.testing.assert_allclose(row, expected, atol=1.5)
    assert np.all(row[: int(0.75 * out_w) - 1] == 255)
    assert row[-1] < 40 and np.all(np.diff(row[int(0.75 * out_w) :]) <= 0)
    # the ramp's middle: half the light, so the value is 0.5 ** (1 / 2.2) = 0.73
    assert row[int(0.875 * out_w)] == pytest.approx(255 * 0.5 ** (1 / 2.2), abs=4)


def test_edit_guides_mark_the_corners(gl_ctx, warp):
    out = ProjectorOutput(corners=CORNERS)
    img = _draw(gl_ctx, warp, np.zeros((16, 16, 3), np.uint8), (320, 240), out, edit=True, selected=2)
    for i, (cx, cy) in enumerate(CORNERS):
        x, y = int(cx * 320), int(cy * 240)
        ring = img[max(y - 16, 0) : y + 17, max(x - 16, 0) : x + 17]
        colour = (255, 89, 51) if i == 2 else (255, 255, 255)
        assert np.any(np.all(np.abs(ring.astype(int) - colour) <= 2, axis=-1)), i
    assert img[120, 5].max() == 0  # outside the quad, away from the guides: still black
