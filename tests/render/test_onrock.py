"""The picture on the rock's shape and the grid warp: a dot drawn in the flattened picture for a
rock point lands where the calibrated projector sees that point (lens distortion included); the
grid moves the picture by its interpolated offsets, and no grid changes nothing; the editor saves
the grid into the scene; a broken calibration falls back to the corner pins with an error."""

from __future__ import annotations

import logging

import cv2
import moderngl
import numpy as np
import pytest
import trimesh

from tests.app.app_helpers import TINY_SCENE
from waterrock.procam.model import OutputCalibration, Pinhole, ProcamCalibration, save_procam
from waterrock.render.command import scene_rock
from waterrock.render.onrock import OnRockPass, fold_radius
from waterrock.render.projection import flattening, to_pixels, view_basis
from waterrock.render.target import OffscreenTarget
from waterrock.render.warp import grid_offset, grid_points
from waterrock.resources import REPO_ROOT
from waterrock.scene import ProjectorOutput, load_scene

pytestmark = pytest.mark.gl

PICTURE = (512, 384)
DEVICE_SIZE = (320, 240)
EYE = (0.5, 1.0, 1.9)


@pytest.fixture(scope="module")
def scene():
    return load_scene(REPO_ROOT / "scenes" / "default.toml")


@pytest.fixture(scope="module")
def rock(scene):
    return scene_rock(scene)  # the boulder, placed as scenes/default.toml places it


@pytest.fixture(scope="module")
def onrock(gl_ctx, rock):
    from waterrock.render.onrock import OnRockPass

    p = OnRockPass(gl_ctx, rock)
    yield p
    p.release()


@pytest.fixture(scope="module")
def warp(gl_ctx):
    from waterrock.render.warp import WarpPass

    p = WarpPass(gl_ctx)
    yield p
    p.release()


def first_hit(mesh, origin, direction) -> np.ndarray | None:
    """The nearest point where the ray from ``origin`` along ``direction`` meets ``mesh``
    (Moller & Trumbore 1997, against every triangle), or None."""
    origin = np.asarray(origin, np.float64)
    d = np.asarray(direction, np.float64) / np.linalg.norm(direction)
    tri = mesh.triangles
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    pv = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, pv)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    tv = origin - tri[:, 0]
    u = np.einsum("ij,ij->i", tv, pv) * inv
    qv = np.cross(tv, e1)
    v = (qv @ d) * inv
    t = np.einsum("ij,ij->i", e2, qv) * inv
    hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-9)
    return origin + d * t[hit].min() if hit.any() else None


def texture(ctx, img: np.ndarray) -> moderngl.Texture:
    """An (H, W) or (H, W, 3) image, row 0 on top, as a picture texture (rows bottom to top)."""
    img = np.ascontiguousarray(img[::-1])
    comps = 1 if img.ndim == 2 else img.shape[2]
    dtype = "f4" if img.dtype == np.float32 else "f1"
    tex = ctx.texture((img.shape[1], img.shape[0]), comps, img.tobytes(), alignment=1, dtype=dtype)
    if comps == 1:
        tex.swizzle = "RRR1"
    return tex


def blob(size, centre, sigma: float = 3.0) -> np.ndarray:
    """A Gaussian dot centred at ``centre`` (pixels, x right, y down, 0 the left edge), 8-bit."""
    x, y = np.meshgrid(np.arange(size[0]) + 0.5, np.arange(size[1]) + 0.5)
    g = np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma**2))
    g[g < 0.01] = 0.0
    return np.round(255 * g).astype(np.uint8)


def centroid(img: np.ndarray) -> np.ndarray:
    """The light's centroid in pixel-centre coordinates (pixel (0, 0)'s centre at 0, 0)."""
    lum = img.astype(np.float64).reshape(img.shape[0], img.shape[1], -1).sum(axis=-1)
    ys, xs = np.nonzero(lum)
    assert len(xs) > 4, "the dot did not show"
    w = lum[ys, xs]
    return np.array([np.average(xs, weights=w), np.average(ys, weights=w)])


def off_axis_target(eye, point, degrees: float) -> np.ndarray:
    """Where a device at ``eye`` must look for ``point`` to lie ``degrees`` off its axis."""
    eye, point = np.asarray(eye, np.float64), np.asarray(point, np.float64)
    d = point - eye
    axis = np.cross(d, [0.0, 1.0, 0.0]) + np.cross(d, [1.0, 0.0, 0.0])
    rot, _ = cv2.Rodrigues(axis / np.linalg.norm(axis) * np.radians(degrees))
    return eye + rot @ d


def rock_point(scene, rock) -> np.ndarray:
    """A point on the rock's face toward the flattening's viewer (the first hit along its view)."""
    s = scene.render.projection
    toward = view_basis(s.azimuth_deg, s.elevation_deg)[2]
    return first_hit(rock, np.array([0.05, 0.3, 0.0]) + 3.0 * toward, -toward)


# --- the projection onto the rock -------------------------------------------------------------


@pytest.mark.parametrize("distorted", [False, True])
def test_a_dot_for_a_rock_point_lands_on_that_point(gl_ctx, onrock, scene, rock, distorted):
    """A picture black but for a small dot at the flattening of a rock point: through the pass,
    the dot's centroid lies within a pixel of where the projector sees that point, also through
    a barrel-distorted lens (k1 = -0.1) with the point far off its axis."""
    flat = flattening(scene.render.projection, PICTURE)
    point = rock_point(scene, rock)
    if distorted:
        target = off_axis_target(EYE, point, 27.0)
        device = Pinhole.looking_at(DEVICE_SIZE, 60.0, EYE, target, dist=(-0.1, 0.0, 0.0, 0.0, 0.0))
    else:
        device = Pinhole.looking_at(DEVICE_SIZE, 40.0, EYE, (0.0, 0.25, 0.0))
    seen = first_hit(rock, device.centre, point - device.centre)
    assert np.linalg.norm(seen - point) < 1e-6  # nothing of the rock hides it from the projector

    tex = texture(gl_ctx, blob(PICTURE, to_pixels(flat, point, PICTURE)[0]))
    try:
        with OffscreenTarget(DEVICE_SIZE, gl_ctx) as target:
            onrock.draw(target.framebuffer, DEVICE_SIZE, tex, device, flat)
            img = target.read()
    finally:
        tex.release()
    expected = device.project(point)[0]
    found = centroid(img)
    assert np.linalg.norm(found - expected) < 1.0, (found, expected)
    if distorted:  # the lens matters here: left out, the dot would be pixels away
        plain = Pinhole(device.size, device.K, device.R, device.t).project(point)[0]
        assert np.linalg.norm(plain - expected) > 3.0


def silhouette(device: Pinhole, mesh, size) -> np.ndarray:
    """Where the mesh covers the device's image (each triangle filled through device.project)."""
    mask = np.zeros((size[1], size[0]), np.uint8)
    px = device.project(mesh.vertices)
    for tri in px[mesh.faces]:
        if np.all(np.isfinite(tri)):
            cv2.fillConvexPoly(mask, np.round(tri * 16).astype(np.int32), 1, cv2.LINE_8, shift=4)
    return mask.astype(bool)


def test_light_only_on_the_rock_and_inside_the_picture(gl_ctx, onrock, scene, rock):
    """A white picture lights exactly the rock as the projector sees it (to a pixel at its
    outline), drawn at twice the projector's pixels; a picture that shows only part of the
    rock leaves the rest of it dark."""
    device = Pinhole.looking_at(DEVICE_SIZE, 40.0, EYE, (0.0, 0.25, 0.0), dist=(-0.05, 0.01, 0.0, 0.0, 0.0))
    size = (2 * DEVICE_SIZE[0], 2 * DEVICE_SIZE[1])  # the window in a mode twice the projector's
    white = np.full((PICTURE[1], PICTURE[0], 3), 255, np.uint8)
    tex = texture(gl_ctx, white)
    try:
        with OffscreenTarget(size, gl_ctx) as target:
            flat = flattening(scene.render.projection, PICTURE)
            onrock.draw(target.framebuffer, size, tex, device, flat)
            lit = target.read().max(axis=-1) > 0
            # a flattening shifted so that the picture's right edge cuts the rock at x = 0
            s = scene.render.projection  # a parallel view from the front: picture x is world x
            half_width = 0.5 * s.height * PICTURE[0] / PICTURE[1]
            half = s.model_copy(update={"center": (-half_width, s.center[1], s.center[2])})
            onrock.draw(target.framebuffer, size, tex, device, flattening(half, PICTURE))
            cut = target.read().max(axis=-1) > 0
    finally:
        tex.release()
    rock_mask = silhouette(device.resized(size), rock, size)
    kernel = np.ones((3, 3), np.uint8)
    grown = cv2.dilate(rock_mask.astype(np.uint8), kernel).astype(bool)
    shrunk = cv2.erode(rock_mask.astype(np.uint8), kernel).astype(bool)
    assert shrunk.sum() > 10_000
    assert np.all(lit[shrunk]) and not np.any(lit[~grown])

    assert 0.25 * lit.sum() < cut.sum() < 0.75 * lit.sum() and np.all(cut <= grown)
    # the rock point each of a few pixels shows: lit left of x = 0, dark right of it
    fitted = device.resized(size)
    ys, xs = np.nonzero(shrunk)
    pick = np.random.default_rng(1).choice(len(xs), 300, replace=False)
    for x, y, ray in zip(xs[pick], ys[pick], fitted.rays(np.c_[xs[pick], ys[pick]]), strict=True):
        hit = first_hit(rock, fitted.centre, ray)
        if abs(hit[0]) > 0.01:
            assert cut[y, x] == (hit[0] < 0.0), (x, y, hit)


def test_fold_radius():
    assert fold_radius([0, 0, 0, 0, 0]) > 1e3 and fold_radius([0.2, 0.05, 0, 0, 0]) > 1e3
    r = fold_radius([-0.1, 0.0, 0.0, 0.0, 0.0])  # r (1 - 0.1 r^2) peaks at r^2 = 1 / 0.3
    assert r == pytest.approx(np.sqrt(1 / 0.3))


# --- the grid warp ----------------------------------------------------------------------------

GRID_SHAPE = (4, 3)
GRID = [(0.01 * np.sin(k), 0.012 * np.cos(1.7 * k)) for k in range(12)]


def test_grid_offset_interpolates_through_the_control_points():
    pts = grid_points(GRID_SHAPE)
    np.testing.assert_allclose(grid_offset(GRID, GRID_SHAPE, pts), GRID, atol=1e-12)
    anywhere = np.random.default_rng(0).uniform(-0.1, 1.1, (50, 2))
    np.testing.assert_allclose(grid_offset([(0.02, -0.01)] * 12, GRID_SHAPE, anywhere),
                               np.tile([0.02, -0.01], (50, 1)), atol=1e-12)  # a constant stays constant
    assert not grid_offset([], GRID_SHAPE, pts).any()


def _warp(ctx, warp, picture: np.ndarray, size, output, **kw) -> np.ndarray:
    """``picture`` through ``warp`` onto an output of ``size``: 8-bit RGB, or float RGBA for a
    float picture (so shares written into it read back unrounded)."""
    tex = texture(ctx, picture)
    tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
    try:
        if picture.dtype != np.float32:
            with OffscreenTarget(size, ctx) as target:
                warp.draw(target.framebuffer, size, tex, output, **kw)
                return target.read()
        colour = ctx.texture(size, 4, dtype="f4")
        fbo = ctx.framebuffer([colour])
        try:
            warp.draw(fbo, size, tex, output, **kw)
            data = np.frombuffer(fbo.read(components=4, dtype="f4"), np.float32)
            return data.reshape(size[1], size[0], 4)[::-1].copy()
        finally:
            fbo.release()
            colour.release()
    finally:
        tex.release()


def test_grid_warp_shader_matches_grid_offset(gl_ctx, warp):
    """A picture whose texels hold their own shares: each output pixel p reads back
    p - grid_offset(p), the numpy interpolation, to float precision."""
    w, h = 96, 72
    x, y = np.meshgrid((np.arange(w) + 0.5) / w, (np.arange(h) + 0.5) / h)
    picture = np.stack([x, y, np.zeros_like(x)], -1).astype(np.float32)
    out = ProjectorOutput(grid_shape=GRID_SHAPE, grid=GRID)
    got = _warp(gl_ctx, warp, picture, (w, h), out)[..., :2]
    p = np.stack([x, y], -1).reshape(-1, 2)
    expected = (p - grid_offset(GRID, GRID_SHAPE, p)).reshape(h, w, 2)
    edge = 0.6 / np.array([w, h])
    inner = np.all((expected > edge) & (expected < 1 - edge), axis=-1)  # linear filtering is exact there
    assert inner.mean() > 0.9
    np.testing.assert_allclose(got[inner], expected[inner], atol=2e-4)


def test_grid_warp_moves_a_feature_by_the_offset(gl_ctx, warp):
    """A dot at picture share q shows at the output point p where p - offset(p) = q: moved by
    the interpolated offset, to a pixel."""
    size = (320, 240)
    q = np.array([0.37, 0.58])
    out = ProjectorOutput(grid_shape=GRID_SHAPE, grid=GRID)
    img = _warp(gl_ctx, warp, blob(size, q * size, sigma=2.5), size, out)
    p = q.copy()
    for _ in range(20):  # p = q + offset(p), a contraction for offsets this gentle
        p = q + grid_offset(GRID, GRID_SHAPE, p)[0]
    found = (centroid(img) + 0.5) / size
    assert np.linalg.norm((found - p) * size) < 1.0
    assert np.linalg.norm((p - q) * size) > 3.0  # it did move


def test_no_grid_renders_as_before(gl_ctx, warp, onrock, scene):
    """An empty grid is the plain path: an unwarped output shows the picture pixel for pixel, and
    a corner-pinned one is the same as with a grid of zeros; on the rock, the pass straight to
    the screen equals the pass through a warp with no grid."""
    rng = np.random.default_rng(3)
    picture = rng.integers(0, 256, (120, 160, 3), np.uint8)
    plain = _warp(gl_ctx, warp, picture, (160, 120), ProjectorOutput())
    np.testing.assert_array_equal(plain, picture)
    corners = ((0.12, 0.08), (0.93, 0.15), (0.85, 0.9), (0.05, 0.8))
    pinned = _warp(gl_ctx, warp, picture, (200, 150), ProjectorOutput(corners=corners))
    zeros = _warp(gl_ctx, warp, picture, (200, 150), ProjectorOutput(corners=corners, grid=[(0.0, 0.0)] * 9))
    np.testing.assert_array_equal(pinned, zeros)

    from waterrock.app.projection import rock_output

    device = Pinhole.looking_at(DEVICE_SIZE, 40.0, EYE, (0.0, 0.25, 0.0))
    flat = flattening(scene.render.projection, PICTURE)
    big = rng.integers(0, 256, (PICTURE[1], PICTURE[0], 3), np.uint8)
    tex = texture(gl_ctx, big)
    try:
        with OffscreenTarget(DEVICE_SIZE, gl_ctx) as target:
            onrock.draw(target.framebuffer, DEVICE_SIZE, tex, device, flat)
            direct = target.read()
            view = onrock.render(DEVICE_SIZE, tex, device, flat)
            warp.draw(target.framebuffer, DEVICE_SIZE, view, rock_output(ProjectorOutput(corners=corners)))
            through = target.read()
    finally:
        tex.release()
    assert direct.any()
    np.testing.assert_array_equal(direct, through)


# --- the editor and the calibration in the app ------------------------------------------------


@pytest.fixture
def scene_file(tmp_path):
    p = tmp_path / "venue.toml"
    p.write_text(TINY_SCENE, encoding="utf-8")
    return p


def test_editor_grid_mode_saves_the_grid(scene_file):
    from waterrock.app.projection import outputs_for
    from waterrock.app.warp_edit import WarpEditor

    scene = load_scene(scene_file)
    editor = WarpEditor(outputs_for(scene.projection, [0, 1]), scene.path)
    editor.begin(1)
    editor.toggle_grid()
    assert editor.grid_mode
    for _ in range(4):
        editor.next_point()  # the 3 x 3 grid's middle point
    assert editor.selected_point() == (0.5, 0.5)
    assert editor.nudge(6.0, -4.0, (1280, 800))
    assert editor.nudge(0.0, 100_000.0, (1280, 800)) is False  # past the scene's bound: refused
    assert editor.outputs[1].corners == ProjectorOutput().corners  # the corners stay
    editor.toggle_grid()
    editor.next_corner()
    editor.nudge(-2.0, 0.0, (1280, 800))  # the top-right corner, as before
    assert editor.save()

    again = load_scene(scene_file).projection.outputs[1]
    expected = [(0.0, 0.0)] * 9
    expected[4] = (round(6 / 1280, 6), round(-4 / 800, 6))
    assert again.grid == expected and again.grid_shape == (3, 3)
    assert again.corners[1] == (round(1 - 2 / 1280, 6), 0.0)
    assert "grid = [[0.0, 0.0]" in scene_file.read_text(encoding="utf-8")

    editor.begin(1)
    editor.toggle_grid()
    editor.reset()  # Backspace in grid mode: no grid
    assert editor.outputs[1].grid == [] and editor.outputs[1].corners == again.corners
    editor.finish()
    assert load_scene(scene_file).projection.outputs[1].grid == []


def test_editor_on_the_rock_edits_only_the_grid(scene_file):
    from waterrock.app.projection import outputs_for
    from waterrock.app.warp_edit import WarpEditor

    editor = WarpEditor(outputs_for(load_scene(scene_file).projection, [0]), scene_file, on_rock={0})
    editor.begin(0)
    assert editor.grid_mode
    editor.toggle_grid()
    assert editor.grid_mode  # no corners to pin on the rock
    editor.grab(0.97, 0.03)  # nearest the top-right grid point
    editor.drag(0.95, 0.04)
    assert editor.point == 2 and editor.outputs[0].grid[2] == pytest.approx((-0.05, 0.04))
    assert "grid point 3,1" in editor.status()


def calibration(device: Pinhole) -> ProcamCalibration:
    camera = Pinhole.looking_at((640, 480), 50.0, (0.0, 1.2, 2.2), (0.0, 0.25, 0.0))
    return ProcamCalibration(camera, {0: OutputCalibration(device, 0.3)})


def test_broken_calibration_falls_back_to_corner_pins(scene_file, caplog):
    from waterrock.app.projection import projector_devices

    broken = scene_file.with_name("venue.procam.json")  # beside the scene: found without a setting
    broken.write_text('{"kind": "procam", "camera": ', encoding="utf-8")
    scene = load_scene(scene_file)
    rock = scene_rock(scene)
    with caplog.at_level(logging.INFO, logger="waterrock.app.projection"):
        assert projector_devices(scene, 2, rock) == {}
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and str(broken) in errors[0] and "corner pin" in errors[0]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("output ")]
    assert len(lines) == 2 and all("corner pin" in line for line in lines)

    device = Pinhole.looking_at((1280, 720), 40.0, EYE, (0.0, 0.25, 0.0))
    save_procam(calibration(device), broken)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="waterrock.app.projection"):
        devices = projector_devices(scene, 2, rock)
        assert projector_devices(scene, 2, None) == {}  # no rock to paint on: corner pins
    assert list(devices) == [0] and np.allclose(devices[0].K, device.K)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("output 0 renders on the rock") for m in messages)
    assert any(m.startswith("output 1 renders through its corner pin") for m in messages)
    assert any("no rock mesh" in m for m in messages)


def test_overlapping_projectors_share_the_light_on_the_rock(gl_ctx):
    """Two calibrated projectors lighting the same rock: where both reach a point their lights
    (pixel value to the power gamma) add up to one; where one alone does, it gives full light."""
    from waterrock.procam.solve import ray_hits

    rock = scene_rock(load_scene(REPO_ROOT / "scenes" / "default.toml"))
    devices = [Pinhole.looking_at((400, 300), 34, [0.6, 1.9, 0.9], [0, 0.25, 0]),
               Pinhole.looking_at((400, 300), 34, [-0.8, 1.9, 0.4], [0, 0.25, 0])]
    white = gl_ctx.texture((64, 64), 4, np.full(64 * 64 * 4, 255, np.uint8).tobytes())
    flat = np.diag([0.1, 0.1, 0.1, 1.0]).astype(np.float32)  # the whole rock inside the white picture
    seen = []
    for k, d in enumerate(devices):
        rock_pass = OnRockPass(gl_ctx, rock)
        rock_pass.blend_with(devices, k, gamma=2.2, ramp=0.1)
        tex = rock_pass.render(d.size, white, d, flat)
        img = np.frombuffer(tex.read(), np.uint8).reshape(d.size[1], d.size[0], 4)[::-1, :, 0] / 255.0
        seen.append(img)
        rock_pass.release()
    points, _ = trimesh.sample.sample_surface(rock, 4000, seed=2)
    light = np.zeros((len(points), 2))
    lit_by = np.zeros((len(points), 2), bool)
    for k, d in enumerate(devices):
        to = points - d.centre
        hit = ray_hits(rock, d.centre, to / np.linalg.norm(to, axis=1, keepdims=True))
        px = d.project(points)
        inside = np.all((px > 4) & (px < np.array(d.size) - 5), axis=1)
        lit_by[:, k] = inside & (np.linalg.norm(hit - points, axis=1) < 1e-3)
        ij = np.rint(np.nan_to_num(px)).astype(int)
        ij[:, 0] = np.clip(ij[:, 0], 0, d.size[0] - 1)
        ij[:, 1] = np.clip(ij[:, 1], 0, d.size[1] - 1)
        light[:, k] = seen[k][ij[:, 1], ij[:, 0]] ** 2.2
    both = lit_by.all(axis=1)
    one = lit_by[:, 0] ^ lit_by[:, 1]
    assert both.sum() > 200 and one.sum() > 100
    total = (light * lit_by).sum(axis=1)
    assert np.median(np.abs(total[both] - 1.0)) < 0.03 and np.percentile(np.abs(total[both] - 1.0), 90) < 0.1
    assert np.median(total[one]) > 0.97
    shared = light[both]
    assert (shared.min(axis=1) < 0.9).mean() > 0.5  # the overlap is really shared, not one at full
