"""The flattening: parallel lines stay parallel, no vanishing point, settings do what they say."""

from __future__ import annotations

import numpy as np
import pytest

from waterrock.render.projection import flattening, to_pixels, view_basis
from waterrock.render.settings import ProjectionSettings, RenderSettings

SIZE = (200, 100)


def pixels(settings: ProjectionSettings, points) -> np.ndarray:
    return to_pixels(flattening(settings, SIZE), np.asarray(points, float), SIZE)


@pytest.mark.parametrize("az, el", [(0, 0), (30, 20), (-120, 60), (45, 90), (10, -90)])
def test_view_basis_is_orthonormal_and_right_handed(az, el):
    r, u, t = view_basis(az, el)
    basis = np.stack([r, u, t])
    assert np.allclose(basis @ basis.T, np.eye(3), atol=1e-12)
    assert np.allclose(np.cross(r, u), t)
    assert abs(r[1]) < 1e-12  # the picture never rolls


def test_center_lands_at_the_picture_centre_and_height_fills_it():
    s = ProjectionSettings(center=(1.0, 2.0, 3.0), elevation_deg=0.0, height=2.0)
    p = pixels(s, [(1.0, 2.0, 3.0), (1.0, 3.0, 3.0), (1.0, 1.0, 3.0)])
    assert np.allclose(p[0], (100, 50))
    assert np.allclose(p[1], (100, 0)) and np.allclose(p[2], (100, 100))


@pytest.mark.parametrize("oblique", [0.0, 0.5, 1.0])
def test_parallel_lines_stay_parallel_at_any_depth(oblique):
    s = ProjectionSettings(azimuth_deg=30, elevation_deg=25, oblique_strength=oblique)
    direction = np.array([0.3, -1.0, 0.2])
    starts = np.array([(0, 0, 0), (0.4, 0.1, -5.0), (-0.3, 0.2, 5.0)])
    a, b = pixels(s, starts), pixels(s, starts + direction)
    d = b - a
    # Same direction and the same length in the picture: no vanishing point, no foreshortening by depth.
    assert np.allclose(d, d[0], atol=1e-9)


def test_perspective_debug_camera_does_foreshorten():
    s = ProjectionSettings(mode="perspective", elevation_deg=0.0)
    near, far = pixels(s, [(0, 0, 0.5), (0, 1, 0.5)]), pixels(s, [(0, 0, -5), (0, 1, -5)])
    assert np.linalg.norm(near[1] - near[0]) > 2 * np.linalg.norm(far[1] - far[0])
    assert np.allclose(pixels(s, [(0, 0, 0)])[0], (100, 50))


def test_oblique_shear_slides_depth_along_its_angle():
    s = ProjectionSettings(elevation_deg=0.0, oblique_strength=0.5, oblique_angle_deg=45.0, height=2.0)
    front, back = pixels(s, [(0, 0, 0), (0, 0, -1.0)])
    shift = back - front
    # 1 m of depth, at half strength, 45 degrees up-right: 0.5 m = 25 px, split over x and -y.
    assert np.allclose(shift, (25 / np.sqrt(2), -25 / np.sqrt(2)))


def test_offset_is_in_picture_heights():
    s = ProjectionSettings(elevation_deg=0.0, offset=(0.25, -0.1))
    assert np.allclose(pixels(s, [(0, 0, 0)])[0], (100 + 25, 50 + 10))


def test_depth_maps_into_the_clip_volume_nearer_is_smaller():
    s = ProjectionSettings(elevation_deg=0.0, depth=10.0)
    m = flattening(s, SIZE).astype(float)
    z = (m @ np.array([[0, 0, 1.0, 1], [0, 0, -1.0, 1]]).T)[2]
    assert z[0] < z[1] and np.all(np.abs(z) <= 1)


def test_render_settings_defaults_and_rejections():
    s = RenderSettings()
    assert s.trails.length == 32 and s.projection.mode == "parallel"
    with pytest.raises(ValueError):
        RenderSettings(trails={"length": 4})
    with pytest.raises(ValueError):
        RenderSettings(lines={"colour": (1, 1, 1)})  # unknown key
    with pytest.raises(ValueError):
        RenderSettings(resolution=(8000, 8000))
