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
Weight = Annotated[float, Field(ge=0.0, le=4.0)]
MAX_TRAIL_LENGTH = 120  # positions a trail keeps at most: shaders/lines.glsl's age_time holds as many
LookName = Literal["pale on deep", "ink", "glow"]

# The shipped looks ([render.look] preset): every colour and weight of the look, in the [render]
# section's own layout. The scene's keys override the preset's; what a preset leaves out (sizes,
# speeds, thresholds, the trails, the flattening) is the scene's or the default. "pale on deep"
# is the defaults themselves (tests/render/test_looks.py holds them equal).
LOOKS: dict[str, dict] = {
    "pale on deep": {  # the work's: pale lines adding up as light on a deep blue-black
        "background": (0.010, 0.028, 0.070), "exposure": 1.0,
        "lines": {"color": (0.80, 0.90, 1.00), "color_fast": (0.95, 0.98, 1.00), "width": 2.0, "width_slow": 1.0,
                  "opacity": 0.35, "opacity_slow": 0.15, "taper": 1.0, "fade": 1.0, "blend": "additive"},
        "rock": {"color": (0.006, 0.007, 0.010), "contour_color": (0.07, 0.09, 0.13)},
        "look": {"packing": (0.35, 0.0), "impact": (1.0, 0.5), "impact_color": (1.0, 1.0, 1.0), "impact_tint": 0.0},
    },
    "ink": {  # dark lines laid over a pale ground, as a brush on paper: splashes dry to nothing
        "background": (0.92, 0.90, 0.85), "exposure": 1.0,
        "lines": {"color": (0.10, 0.12, 0.16), "color_fast": (0.02, 0.03, 0.06), "width": 1.6, "width_slow": 2.4,
                  "opacity": 0.55, "opacity_slow": 0.30, "taper": 0.8, "fade": 0.9, "blend": "alpha"},
        "rock": {"color": (0.80, 0.78, 0.72), "contour_color": (0.62, 0.60, 0.55)},
        "look": {"packing": (0.55, 0.4), "impact": (0.6, 0.8), "impact_color": (0.0, 0.0, 0.0), "impact_tint": 0.0},
    },
    "glow": {  # coloured light: blue to cyan water, thinner where fast, impacts flaring warm and bright
        "background": (0.004, 0.008, 0.020), "exposure": 1.3,
        "lines": {"color": (0.10, 0.35, 0.75), "color_fast": (0.35, 0.90, 1.00), "width": 1.5, "width_slow": 2.5,
                  "opacity": 0.40, "opacity_slow": 0.12, "taper": 1.0, "fade": 1.0, "blend": "additive"},
        "rock": {"color": (0.003, 0.005, 0.010), "contour_color": (0.04, 0.08, 0.14)},
        "look": {"packing": (0.6, 0.3), "impact": (3.0, 1.0), "impact_color": (1.00, 0.75, 0.45), "impact_tint": 0.85},
    },
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TrailSettings(_Section):
    """Which particles leave a trail, and how long it is."""

    share: float = Field(0.25, ge=0.001, le=1.0, description="share of particles (by id) drawing a trail")
    length: int = Field(32, ge=8, le=MAX_TRAIL_LENGTH, description="K: positions kept per trail (K-1 segments)")


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


class LookSettings(_Section):
    """How the water's state weighs on its lines, beside speed and age (``[render.lines]``: the
    slow and fast widths, opacities and colours; ``taper`` and ``fade`` along the trail), and the
    named look the scene starts from (docs/rendering.md, "Looks").

    Packing is how packed the water is round a particle (rho/rho0, ParticleSnapshot.packing):
    ``loose`` and below reads as a splash or a stretched fall, ``packed`` and above as a sheet.
    Impact is the water's acceleration along its trail, from the trail's own positions: free
    fall and sliding are about 1 g, water striking the rock many; a quarter of
    ``impact_accel`` and below is none, ``impact_accel`` and above a full impact."""

    preset: LookName = Field("pale on deep", description="the named look whose colours and weights the scene "
                             "starts from (LOOKS); the scene's own keys override them")
    packing: tuple[Unit, Unit] = Field((0.35, 0.0), description="(opacity, width): how far loose water's line "
                                       "dims and thins, 0 not at all, 1 to nothing")
    loose: float = Field(0.4, ge=0.0, le=2.0, description="rho/rho0 at and below which water is loose (a lone "
                         "drop is about 0.3)")
    packed: float = Field(0.9, ge=0.0, le=2.0, description="rho/rho0 at and above which water is packed")
    impact: tuple[Weight, Weight] = Field((1.0, 0.5), description="(opacity, width): a full impact multiplies "
                                          "the line's by 1 + this")
    impact_accel: Positive = Field(60.0, description="m/s^2 of acceleration that reads as a full impact "
                                   "(free fall: 9.81)")
    impact_color: Color = Field((1.0, 1.0, 1.0), description="the colour an impact turns the line toward")
    impact_tint: Unit = Field(0.0, description="how far a full impact turns the line to impact_color")

    @model_validator(mode="after")
    def _loose_below_packed(self) -> LookSettings:
        if not self.loose < self.packed:
            raise ValueError(f"loose ({self.loose}) must lie below packed ({self.packed})")
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
    look: LookSettings = LookSettings()

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data):
        """The preset's colours and weights under the scene's own keys (an unknown name is left
        for the ``preset`` field to refuse, naming the key)."""
        if not isinstance(data, dict):
            return data
        look = _given(data.get("look", {}))
        name = look.get("preset", "pale on deep") if isinstance(look, dict) else None
        return _under(LOOKS[name], data) if name in LOOKS else data

    @model_validator(mode="after")
    def _resolution(self):
        w, h = self.resolution
        if not (16 <= w <= 7680 and 16 <= h <= 4320):
            raise ValueError(f"resolution {self.resolution} outside 16x16 .. 7680x4320")
        return self

    def resolved(self, base: Path) -> RenderSettings:
        """A copy with relative paths made absolute against the scene file's folder (none yet)."""
        return self


def _given(value):
    """What a section sets itself: a dict as it is, a model its keys set (not its defaults)."""
    return value.model_dump(exclude_unset=True) if isinstance(value, BaseModel) else value


def with_look(data: dict, name: str) -> dict:
    """A whole ``[render]`` table (``RenderSettings.model_dump()``) turned to the look ``name``:
    every colour and weight the preset names, and the name; the rest (sizes, the trails, the
    flattening) as it was. A look chosen while the work runs (OSC), not under the scene's keys as
    the file's preset is: the file's own keys apply again at its next edit. An unknown name is
    left for the ``preset`` field to refuse."""
    out = _over(LOOKS.get(name, {}), data)
    out["look"] = {**out.get("look", {}), "preset": name}
    return out


def _over(preset: dict, data: dict) -> dict:
    """``data`` with ``preset``'s keys put over its own, section by section."""
    out = dict(data)
    for key, value in preset.items():
        given = out.get(key)
        out[key] = _over(value, given) if isinstance(value, dict) and isinstance(given, dict) else value
    return out


def _under(preset: dict, data: dict) -> dict:
    """``data`` with ``preset``'s keys filled in where it has none, section by section."""
    out = dict(data)
    for key, value in preset.items():
        given = _given(out.get(key))
        if isinstance(value, dict) and isinstance(given, dict):
            out[key] = _under(value, given)
        elif key not in out:
            out[key] = value
    return out
