"""The mouse visitor's mapping: window pixels back to the scene through the inverse flattening."""

from __future__ import annotations

import numpy as np
import pytest

from waterrock.app.pointer import pixel_to_scene, touch_plane, visitor_radius
from waterrock.render.projection import flattening, to_pixels
from waterrock.render.settings import ProjectionSettings
from waterrock.scene import parse_scene


@pytest.mark.parametrize(
    "proj",
    [
        {},
        {"azimuth_deg": 30.0, "elevation_deg": 35.0, "oblique_strength": 0.5, "offset": [0.1, -0.05]},
        {"mode": "perspective", "elevation_deg": 10.0},
    ],
)
def test_pixel_to_scene_inverts_the_flattening(proj):
    s = ProjectionSettings(center=(0.0, 0.5, 0.0), height=1.5, **proj)
    size = (640, 360)
    m = flattening(s, size)
    rng = np.random.default_rng(1)
    # points on a vertical plane facing the view's azimuth through (0.1, 0.6, 0.05)
    point = np.array([0.1, 0.6, 0.05])
    az = np.radians(s.azimuth_deg)
    normal = np.array([np.sin(az), 0.0, np.cos(az)])
    right = np.array([np.cos(az), 0.0, -np.sin(az)])
    for _ in range(10):
        p = point + rng.uniform(-0.4, 0.4) * right + rng.uniform(-0.4, 0.4) * np.array([0, 1.0, 0])
        px = to_pixels(m, p[None], size)[0]
        back = pixel_to_scene(m, size, px[0], px[1], point, normal)
        np.testing.assert_allclose(back, p, atol=1e-4)


def test_touch_plane_through_the_emitter():
    scene = parse_scene(
        {
            "domain": {"lower": [-1, 0, -1], "upper": [1, 1, 1]},
            "emitters": [{"center": [0.1, 0.9, 0.2]}],
        }
    )
    point, normal = touch_plane(scene)
    np.testing.assert_allclose(point, [0.1, 0.9, 0.2])
    np.testing.assert_allclose(normal, [0.0, 0.0, 1.0], atol=1e-12)  # the default view is from +z
    assert 2 * scene.fluid.support_radius <= visitor_radius(scene) <= 0.3


def test_line_of_sight_along_the_plane_gives_nan():
    s = ProjectionSettings(elevation_deg=0.0)
    m = flattening(s, (100, 100))
    out = pixel_to_scene(m, (100, 100), 50, 50, np.zeros(3), np.array([1.0, 0.0, 0.0]))
    assert np.all(np.isnan(out))
