"""The two rasterizers of the lines (render/lines.py) draw the same picture, and the rock's
occlusion hides only what lies behind it."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from pydantic import ValidationError

from tests.render.conftest import sphere_rock, waterfall
from waterrock.render.lines import LineLayer
from waterrock.render.renderer import Renderer
from waterrock.render.settings import LineSettings, RenderSettings
from waterrock.render.target import OffscreenTarget

SIZE = (320, 180)


def render(rasterizer: str = "pipeline", occludes: bool = True, frames: int = 45) -> np.ndarray:
    settings = RenderSettings(
        resolution=SIZE, trails={"share": 0.5, "length": 24}, projection={"height": 2.6, "elevation_deg": 15.0},
        lines={"width": 6.0, "width_slow": 3.0, "rasterizer": rasterizer}, rock={"occludes": occludes},
    )
    with OffscreenTarget(SIZE) as target, Renderer(target.ctx, settings, SIZE, sphere_rock(), 3000) as r:
        if rasterizer == "compute" and r.lines.rasterizer != "compute":
            pytest.skip(f"compute shaders need OpenGL 4.3; this context has {target.ctx.version_code}")
        for snapshot in waterfall(3000, frames, seed=7):
            r.update(snapshot)
        r.render(target.framebuffer)
        return r.read_pixels().astype(int)


@pytest.mark.gl
@pytest.mark.parametrize("occludes", [True, False])
def test_compute_rasterizer_draws_the_pipelines_picture(gl_ctx, occludes):
    pipeline, compute = render("pipeline", occludes), render("compute", occludes)
    diff = np.abs(pipeline - compute).max(axis=2)
    lit = pipeline.max(axis=2) > 40
    assert lit.mean() > 0.05  # there is a waterfall to compare
    assert diff.mean() < 0.5, f"mean difference {diff.mean():.2f} levels"
    assert (diff > 8).mean() < 0.001, f"{(diff > 8).mean():.3%} of pixels differ by more than 8 levels"


@pytest.mark.gl
def test_the_rock_hides_only_the_water_behind_it(gl_ctx):
    """Lines are light: where nothing of the rock is in front, occluding changes nothing, however
    many lines cross a pixel (they once wrote depth and hid each other)."""
    hidden, shown = render(occludes=True), render(occludes=False)
    rows_above_rock = slice(0, 40)  # the falling sheet, above the sphere's top on screen
    assert shown[rows_above_rock].max() > 150
    assert np.abs(hidden[rows_above_rock] - shown[rows_above_rock]).max() <= 1
    assert np.abs(hidden - shown).max(axis=2).mean() > 0.5  # and behind the rock, it hides


def test_the_compute_rasterizer_needs_additive_light():
    with pytest.raises(ValidationError, match="rasterizer = 'compute'.*blend = 'additive'"):
        LineSettings(rasterizer="compute", blend="alpha")


class _OldContext:
    """A context that says it is OpenGL 3.3 and otherwise is the real one."""

    version_code = 330

    def __init__(self, ctx):
        self._ctx = ctx

    def __getattr__(self, name):
        return getattr(self._ctx, name)


@pytest.mark.gl
def test_without_opengl_4_3_the_pipeline_draws_with_a_warning(gl_ctx, caplog):
    with caplog.at_level(logging.WARNING, logger="waterrock.render.lines"):
        layer = LineLayer(_OldContext(gl_ctx), LineSettings(rasterizer="compute"))
    try:
        assert layer.rasterizer == "pipeline"
        assert "needs OpenGL 4.3" in caplog.text
    finally:
        layer.release()
