"""The scene's [render] section: trails, lines, colours and the flattening projection.

Widths are in pixels of a 1080-line picture and scale with the output height, so a scene looks
the same in a 720p preview and a 4K recording. Colours are display RGB in 0..1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Color = tuple[Unit, Unit, Unit]
Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TrailSettings(_Section):
    """Which particles leave a trail, and how long it is."""

    share: float = Field(0.25, ge=0.001, le=1.0, description="share of particles (by id) drawing a trail")
    length: int = Field(32, ge=8, le=120, description="K: positions kept per trail (K-1 segments)")


class LineSettings(_Section):
    """The look of one trail: a thick, anti-aliased, tapered polyline."""

    color: Color = Field((0.80, 0.90, 1.00), description="colour of slow water")
    color_fast: Color = Field((0.95, 0.98, 1.00), description="colour of fast water")
    width: Positive = Field(2.0, description="width of a fast line's head, px at 1080 lines")
    width_slow: Positive = Field(1.0, description="width of a still line's head, px at 1080 lines")
    opacity: Unit = Field(0.35, description="opacity of a fast line's head")
    opacity_slow: Unit = Field(0.15, description="opacity of a still line's head")
    fast_speed: Positive = Field(2.0, description="m/s where width, opacity, colour are fast")
    taper: Unit = Field(1.0, description="how far the width narrows toward the tail: 0 none, 1 to nothing")
    fade: Unit = Field(1.0, description="how far the opacity fades toward the tail: 0 none, 1 to nothing")
    blend: Literal["additive", "alpha"] = "additive"
    rasterizer: Literal["pipeline", "compute"] = Field(
        "pipeline", description="who fills the lines' pixels: the graphics pipeline, or compute shaders "
        "(OpenGL 4.3, additive blend; for GPUs with little graphics hardware: docs/rendering.md)")

    @model_validator(mode="after")
    def _compute_adds(self) -> LineSettings:
        if self.rasterizer == "compute" and self.blend != "additive":
            raise ValueError("rasterizer = 'compute' adds the lines' light in any order: it needs blend = 'additive'")
        return self


class RockSettings(_Section):
    """The rock as a dark flat shape: its silhouette under the same flattening."""

    visible: bool = True
    color: Color = (0.006, 0.007, 0.010)
    occludes: bool = Field(True, description="water behind the rock (along the view) is hidden by it")
    surface_margin: float = Field(0.02, ge=0.0, le=1.0, description="m: water this near the surface shows")
    contour_spacing: float = Field(0.1, ge=0.0, le=100.0, description="m between iso-height lines; 0: none")
    contour_color: Color = (0.07, 0.09, 0.13)
    contour_width: Positive = Field(1.0, description="px at 1080 lines")


class ProjectionSettings(_Section):
    """The flattening: a parallel (oblique) projection, or a perspective camera for debugging.

    The view looks toward ``center`` from the direction given by azimuth (about y, 0 = from +z)
    and elevation (above the horizon). The oblique shear then slides what is deeper in the
    view by ``oblique_strength`` of its depth along ``oblique_angle_deg`` on the picture.
    """

    mode: Literal["parallel", "perspective"] = "parallel"
    center: tuple[float, float, float] = Field((0.0, 0.0, 0.0), description="scene point at the centre")
    azimuth_deg: float = Field(0.0, ge=-360.0, le=360.0)
    elevation_deg: float = Field(20.0, ge=-90.0, le=90.0)
    oblique_angle_deg: float = Field(45.0, ge=-360.0, le=360.0, description="where depth slides to")
    oblique_strength: float = Field(0.0, ge=0.0, le=2.0, description="0 ortho, 0.5 cabinet, 1 cavalier")
    height: Positive = Field(2.0, description="metres of the scene shown over the picture's height (zoom)")
    offset: tuple[float, float] = Field((0.0, 0.0), description="shift in picture heights, x right, y up")
    depth: Positive = Field(100.0, description="metres of depth kept in front of and behind center")
    fov_deg: float = Field(40.0, gt=1.0, lt=170.0, description="perspective only: vertical field of view")


class RenderSettings(_Section):
    resolution: tuple[int, int] = Field((1920, 1080), description="w, h pixels of offscreen output")
    background: Color = (0.010, 0.028, 0.070)
    exposure: Positive = Field(1.0, description="scale of accumulated light before tone mapping")
    trails: TrailSettings = TrailSettings()
    lines: LineSettings = LineSettings()
    rock: RockSettings = RockSettings()
    projection: ProjectionSettings = ProjectionSettings()

    @model_validator(mode="after")
    def _resolution(self):
        w, h = self.resolution
        if not (16 <= w <= 7680 and 16 <= h <= 4320):
            raise ValueError(f"resolution {self.resolution} outside 16x16 .. 7680x4320")
        return self

    def resolved(self, base: Path) -> RenderSettings:
        """A copy with relative paths made absolute against the scene file's folder (none yet)."""
        return self
