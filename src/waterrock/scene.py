"""Scene: what an artist edits, in TOML, validated once at the edge and typed everywhere after.

Every section is a pydantic model with ``extra="forbid"``: an unknown key, a wrong type or an
impossible value is rejected with the file, the key and the reason (:class:`SceneError`).
Relative paths (the rock mesh, calibrations) are resolved against the scene file's folder.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from waterrock.render.settings import RenderSettings
from waterrock.resources import scene_path
from waterrock.tracking.settings import TrackingSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Vec3 = tuple[float, float, float]
Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]


class SceneError(ValueError):
    """A scene file that cannot be used; the message names the file, the key and the reason."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Box(_Section):
    lower: Vec3
    upper: Vec3

    @model_validator(mode="after")
    def _ordered(self):
        if any(u <= lo for lo, u in zip(self.lower, self.upper, strict=True)):
            raise ValueError(f"upper {self.upper} must exceed lower {self.lower} on every axis")
        return self


class Domain(Box):
    """The simulated box; its walls are solid, except where a sink retires water."""


class Rock(_Section):
    mesh: Path | None = Field(None, description="OBJ/PLY/STL/GLB, relative to the scene file; none: no rock")
    translate: Vec3 = (0.0, 0.0, 0.0)
    rotate_deg: Vec3 = Field((0.0, 0.0, 0.0), description="Euler angles about x, y, z, applied in that order")
    scale: Positive = 1.0
    sdf_resolution: int = Field(64, ge=8, le=512, description="SDF cells along the rock's longest side")
    friction: float = Field(0.2, ge=0.0, le=1.0, description="share of tangential velocity lost on contact")


class FluidBlock(Box):
    """A block of water present at the start (dam break, hydrostatic column)."""


class Fluid(_Section):
    particle_radius: Positive = 0.01
    rest_density: Positive = 1000.0
    viscosity: float = Field(
        0.01, ge=0.0, le=1.0, description="XSPH coefficient (PBF) / artificial viscosity alpha (SPH)"
    )
    wall_friction: float = Field(
        40.0,
        ge=0.0,
        le=1000.0,
        description="1/s: how fast water beside a wall or the rock loses its velocity relative to it",
    )
    max_particles: int = Field(20000, ge=1, le=50_000_000, description="fixed particle budget")
    blocks: list[FluidBlock] = []

    @property
    def spacing(self) -> float:
        return 2.0 * self.particle_radius

    @property
    def support_radius(self) -> float:
        """h, the kernel's compact support: 4 particle radii (2 spacings), as in SPlisHSPlasH."""
        return 4.0 * self.particle_radius

    @property
    def particle_mass(self) -> float:
        return self.rest_density * self.spacing**3


class Emitter(_Section):
    shape: Literal["disk", "rect"] = "disk"
    center: Vec3
    direction: Vec3 = (0.0, -1.0, 0.0)
    radius: Positive = 0.05
    size: tuple[Positive, Positive] = (0.1, 0.1)
    speed: Positive = 1.0
    rate: float | None = Field(
        None, gt=0.0, description="particles per second; default fills the opening at rest density"
    )

    @field_validator("direction")
    @classmethod
    def _nonzero(cls, v):
        if math.hypot(*v) < 1e-9:
            raise ValueError("direction must not be the zero vector")
        return v


class Sink(Box):
    """Particles entering this box are retired and later re-emitted."""


class SolverSettings(_Section):
    method: Literal["pbf", "dfsph", "wcsph"] = "pbf"
    frame_rate: Positive = 60.0
    substeps: int = Field(2, ge=1, le=1000, description="substeps per frame, at least")
    max_substeps: int = Field(20, ge=1, le=100000, description="the CFL condition may add substeps up to this")
    cfl: float = Field(0.4, gt=0.0, le=1.0, description="Courant number: dt <= cfl * particle spacing / max speed")
    time_step: float | None = Field(
        None, gt=0.0, le=0.1, description="a fixed substep length in seconds instead of the CFL condition"
    )
    gravity: Vec3 = (0.0, -9.81, 0.0)
    max_speed: float = Field(
        20.0, gt=0.0, le=1000.0, description="m/s: a safety limit on particle speed, far above a waterfall's"
    )
    # PBF (Macklin & Mueller 2013)
    pbf_iterations: int = Field(4, ge=1, le=100)
    pbf_relaxation: Positive = Field(100.0, description="epsilon in eq. 11, constraint force mixing")
    vorticity_epsilon: float = Field(0.01, ge=0.0, le=1.0, description="vorticity confinement strength, eq. 16")
    # DFSPH (Bender & Koschier 2015)
    density_tolerance: float = Field(0.001, gt=0.0, le=0.1, description="mean relative density error")
    divergence_tolerance: float = Field(0.01, gt=0.0, le=1.0, description="mean relative divergence error per second")
    max_iterations: int = Field(100, ge=1, le=10000)
    # WCSPH (Becker & Teschner 2007)
    stiffness: Positive = Field(50000.0, description="B in Tait's equation, eq. 7, in Pa")
    exponent: float = Field(7.0, ge=1.0, le=10.0, description="gamma in Tait's equation")
    seed: int = 0

    @model_validator(mode="after")
    def _range(self):
        if self.max_substeps < self.substeps:
            raise ValueError(f"max_substeps ({self.max_substeps}) must be at least substeps ({self.substeps})")
        return self


class Scene(_Section):
    name: str = "untitled"
    description: str = ""
    domain: Domain
    rock: Rock = Rock()
    fluid: Fluid = Fluid()
    emitters: list[Emitter] = []
    sinks: list[Sink] = []
    solver: SolverSettings = SolverSettings()
    tracking: TrackingSettings = TrackingSettings()
    render: RenderSettings = RenderSettings()
    path: Path | None = Field(None, exclude=True, description="the file this scene was read from")

    @model_validator(mode="after")
    def _fits(self):
        if (
            min(u - lo for lo, u in zip(self.domain.lower, self.domain.upper, strict=True))
            < 2 * self.fluid.support_radius
        ):
            raise ValueError("domain is thinner than 2 kernel support radii on some axis")
        return self


def _format_errors(path: Path | str, err: ValidationError) -> str:
    lines = [f"{path}: invalid scene ({err.error_count()} problem{'s' if err.error_count() > 1 else ''})"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        reason = e["msg"]
        if e["type"] == "extra_forbidden":
            reason = "unknown key"
        lines.append(
            f"  [{key}] {reason} (got {e.get('input')!r})" if e["type"] != "missing" else f"  [{key}] {reason}"
        )
    return "\n".join(lines)


def parse_scene(data: dict, source: Path | str = "<scene>") -> Scene:
    base = Path(source).parent if source != "<scene>" else Path.cwd()
    try:
        scene = Scene.model_validate(data)
    except ValidationError as err:
        raise SceneError(_format_errors(source, err)) from None
    rock = scene.rock
    if rock.mesh is not None and not rock.mesh.is_absolute():
        rock = rock.model_copy(update={"mesh": (base / rock.mesh).resolve()})
    return scene.model_copy(
        update={
            "rock": rock,
            "path": Path(source) if source != "<scene>" else None,
            "tracking": scene.tracking.resolved(base),
            "render": scene.render.resolved(base),
        }
    )


def load_scene(path: str | Path) -> Scene:
    """Read and validate a scene: a path to a TOML file, or the name of a shipped scene."""
    p = scene_path(path)
    if not p.exists():
        raise SceneError(f"{p}: scene file not found")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SceneError(f"{p}: not valid TOML: {err}") from None
    return parse_scene(data, p)
