"""Calibration: pixels to scene metres and back, under a millimetre; solved from clicks."""

from __future__ import annotations

import numpy as np
import pytest

from waterrock.tracking.calibrate import (
    DepthCalibration,
    FloorHomography,
    Intrinsics,
    load_calibration,
    save_calibration,
    solve_from_clicks,
    solve_rigid,
)
from waterrock.tracking.synthetic import SyntheticScript, SyntheticSource

OBLIQUE = DepthCalibration.look_at(
    Intrinsics(640, 480, 525.0, 523.0, 318.6, 241.2), (1.5, 3.2, 4.0), (0.2, 0.0, 0.3)
)


def test_depth_calibration_round_trips_under_a_millimetre():
    rng = np.random.default_rng(1)
    uv = rng.uniform([0, 0], [640, 480], size=(500, 2))
    d = rng.uniform(0.5, 8.0, size=500)
    world = OBLIQUE.pixel_to_world(uv, d)
    uv2, d2 = OBLIQUE.world_to_pixel(world)
    np.testing.assert_allclose(uv2, uv, atol=1e-6)
    np.testing.assert_allclose(d2, d, atol=1e-9)
    pts = rng.uniform([-3, 0, -3], [3, 2, 3], size=(500, 3))
    uv3, d3 = OBLIQUE.world_to_pixel(pts)
    assert np.max(np.linalg.norm(OBLIQUE.pixel_to_world(uv3, d3) - pts, axis=1)) < 1e-3


def test_look_at_points_the_optical_axis_at_the_target():
    uv, d = OBLIQUE.world_to_pixel([(0.2, 0.0, 0.3)])
    np.testing.assert_allclose(uv[0], [318.6, 241.2], atol=1e-6)
    down = DepthCalibration.look_at(Intrinsics.from_fov(640, 480, 70), (0, 5, 0), (0, 0, 0))
    # image top is towards -z (the wall), image right towards +x
    (u_right, _), (_, v_top) = down.world_to_pixel([(1, 0, 0), (0, 0, -1)])[0]
    assert u_right > 320 and v_top < 240


def _true_homography_points(n: int):
    """Floor points and where the oblique camera sees them: a homography's ground truth."""
    rng = np.random.default_rng(n)
    world = np.column_stack([rng.uniform(-1.5, 1.5, n), np.zeros(n), rng.uniform(-1.5, 1.5, n)])
    uv, _ = OBLIQUE.world_to_pixel(world)
    return uv, world


@pytest.mark.parametrize("n", [4, 9])
def test_floor_homography_round_trips_under_a_millimetre(n):
    uv, world = _true_homography_points(n)
    h = FloorHomography.from_points(uv, world, width=640, height=480)
    test_uv, test_world = _true_homography_points(200)
    mapped = h.pixel_to_world(test_uv)
    assert np.max(np.linalg.norm(mapped - test_world, axis=1)) < 1e-3, "pixel -> world"
    back = h.world_to_pixel(h.pixel_to_world(test_uv))
    np.testing.assert_allclose(back, test_uv, atol=1e-6)
    again = h.pixel_to_world(h.world_to_pixel(test_world))
    assert np.max(np.linalg.norm(again - test_world, axis=1)) < 1e-3, "world -> pixel -> world"


def test_homography_rejects_too_few_or_collinear_points():
    with pytest.raises(ValueError, match="four or more"):
        FloorHomography.from_points([(0, 0), (1, 0), (0, 1)], [(0, 0), (1, 0), (0, 1)])
    with pytest.raises(ValueError):
        FloorHomography.from_points([(0, 0), (1, 1), (2, 2), (3, 3)], [(0, 0), (1, 1), (2, 2), (3, 3)])


def test_kabsch_recovers_a_rigid_transform():
    rng = np.random.default_rng(3)
    cam = rng.normal(size=(6, 3))
    world = cam @ OBLIQUE.rotation.T + OBLIQUE.translation
    r, t = solve_rigid(cam, world)
    np.testing.assert_allclose(r, OBLIQUE.rotation, atol=1e-9)
    np.testing.assert_allclose(t, OBLIQUE.translation, atol=1e-9)
    with pytest.raises(ValueError, match="one line"):
        solve_rigid([(0, 0, 0), (1, 0, 0), (2, 0, 0)], [(0, 0, 0), (1, 0, 0), (2, 0, 0)])


def test_pose_from_clicks_on_a_depth_frame():
    src = SyntheticSource(SyntheticScript((), 1.0), camera=OBLIQUE, noise_mm=0.0, dropout=0.0, loop=False)
    depth = src.render(0)
    clicks = np.array([(100, 380), (540, 400), (320, 150), (480, 200), (160, 220)], float)
    # the scene points an operator would have measured on the floor at those pixels
    exact = src.render_depth_m(0)[clicks[:, 1].astype(int), clicks[:, 0].astype(int)]
    world = OBLIQUE.pixel_to_world(clicks, exact)
    cal, residual = solve_from_clicks(clicks, world, depth, OBLIQUE.intrinsics)
    assert residual < 0.005
    assert np.linalg.norm(cal.translation - OBLIQUE.translation) < 0.01
    assert np.degrees(np.arccos(np.clip((np.trace(cal.rotation.T @ OBLIQUE.rotation) - 1) / 2, -1, 1))) < 0.2


def test_homography_from_clicks_on_a_colour_frame():
    uv, world = _true_homography_points(6)
    cal, residual = solve_from_clicks(uv, world, image_size=(640, 480))
    assert isinstance(cal, FloorHomography) and residual < 1e-3


@pytest.mark.parametrize("cal", [OBLIQUE, FloorHomography.from_points(*_true_homography_points(5))])
def test_calibration_file_round_trip(tmp_path, cal):
    path = save_calibration(cal, tmp_path / "venue.calibration.json")
    back = load_calibration(path)
    assert type(back) is type(cal)
    assert back.to_dict() == cal.to_dict()  # JSON keeps every float bit for bit


def test_bad_calibration_files_name_themselves(tmp_path):
    with pytest.raises(FileNotFoundError, match="waterrock calibrate"):
        load_calibration(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "lens"}')
    with pytest.raises(ValueError, match="bad.json.*unknown calibration kind"):
        load_calibration(bad)
