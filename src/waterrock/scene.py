"""Scene: what an artist edits, in TOML, validated once at the edge and typed everywhere after.

Every section is a pydantic model with ``extra="forbid"``: an unknown key, a wrong type or an
impossible value is rejected with the file, the key and the reason (:class:`SceneError`).
Relative paths (the rock mesh, calibrations) are resolved against the scene file's folder.

The one part written back is ``[projection]``, the projector outputs and their warps, which an
operator calibrates at the venue: :func:`save_projection` replaces that section and keeps the
rest of the file, comments included.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import tomlkit
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    IPvAnyNetwork,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Comment, Item, Null, Table, Whitespace

from waterrock import files
from waterrock.render.settings import RenderSettings
from waterrock.resources import scene_path
from waterrock.tracking.settings import TrackingSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Vec3 = tuple[float, float, float]
Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Point2 = tuple[Annotated[float, Field(ge=-1.0, le=2.0)], Annotated[float, Field(ge=-1.0, le=2.0)]]
IDENTITY_CORNERS: tuple[Point2, Point2, Point2, Point2] = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
# Substeps in a frame at most (the solver's bound too): a substep is a dozen kernel launches or
# more, so a thousand already take a CPU about a second whatever the particles; 1.7e7 (a time
# step of 1e-9 s) took minutes a frame and never answered SIGTERM.
MAX_SUBSTEPS = 1000


def _within(v: float, lo: float, hi: float, unit: str, why: str) -> float:
    """``v`` if lo <= v <= hi, else the validation error that says the bound and why it is there."""
    if not lo <= v <= hi:
        raise ValueError(f"{v:g} {unit} is outside [{lo:g}, {hi:g}]: {why}")
    return v


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
    rest_density: float = Field(1000.0, description="kg/m^3, rho0: within [10, 100000] (see _liquid)")
    viscosity: float = Field(
        0.01, ge=0.0, le=1.0,
        description="c of XSPH (Schechter & Bridson 2012; Macklin & Mueller 2013, eq. 17): each method blends a "
        "particle's velocity with its neighbours' by c once a substep (PBF after its iterations, DFSPH with the "
        "non-pressure forces before its density solve, WCSPH in its momentum pass); 0: none",
    )
    wall_friction: float = Field(
        40.0,
        ge=0.0,
        le=1000.0,
        description="1/s: how fast water beside a wall or the rock loses its velocity relative to it",
    )
    max_particles: int = Field(20000, ge=1, le=50_000_000, description="fixed particle budget")
    blocks: list[FluidBlock] = []

    @field_validator("rest_density")
    @classmethod
    def _liquid(cls, v):
        return _within(v, 10.0, 100_000.0, "kg/m^3", "liquids lie between about 70 (hydrogen) and 13,600 (mercury), "
                       "and far outside, the solver's float32 sums overflow (1e20: NaN in the first substep)")

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


class PortalTransform(_Section):
    """From this work's frame into the peer's: rotated about x, y, z in that order, then moved
    (positions; velocities are only rotated)."""

    rotate_deg: Vec3 = (0.0, 0.0, 0.0)
    translate: Vec3 = (0.0, 0.0, 0.0)


FACES = ("x-", "x+", "y-", "y+", "z-", "z+")


class Portal(_Section):
    """``[[portals]]``: a region of this work's boundary joined to another work over ZeroMQ.

    ``direction = "out"``: water that enters ``region`` (a box, or the slab of two particle
    spacings inside a ``face`` of the domain) is retired here and handed over, with its velocity,
    to the portal ``peer_portal`` of the work listening at ``peer``, through ``transform``.
    ``direction = "in"``: listens on ``interface``:``port`` and brings in what the peer hands
    over, within the particle budget."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    direction: Literal["out", "in"]
    region: Box | None = Field(None, description="out: the box whose water is handed over")
    face: Literal["x-", "x+", "y-", "y+", "z-", "z+"] | None = Field(
        None, description="out: instead of region, the slab inside this face of the domain")
    peer: str | None = Field(None, pattern=r"^tcp://[^\s:/]+:[0-9]{1,5}$",
                             description="out: the peer work's inflow, tcp://host:port")
    peer_portal: str | None = Field(None, min_length=1, max_length=64, description="out: its portal's name")
    transform: PortalTransform = PortalTransform()
    interface: str = Field("127.0.0.1", min_length=1, description="in: the address to listen on (127.0.0.1: this "
                           "machine only; name the venue network's interface to take water from another machine)")
    port: int | None = Field(None, ge=1024, le=65535, description="in: the TCP port to listen on")
    window: int = Field(30, ge=1, le=1000, description="out: hand-overs in flight unacknowledged at most; past "
                        "them (the peer gone, slow or full) the portal drains its water as a sink, counted")

    @model_validator(mode="after")
    def _ends(self):
        if self.direction == "out":
            if (self.region is None) == (self.face is None):
                raise ValueError(f"portal {self.name!r}: an outgoing portal needs exactly one of region or face")
            if self.peer is None or self.peer_portal is None:
                raise ValueError(f"portal {self.name!r}: an outgoing portal needs peer (tcp://host:port) and "
                                 f"peer_portal")
        else:
            if self.port is None:
                raise ValueError(f"portal {self.name!r}: an inflow needs the port it listens on")
            extra = [k for k in ("region", "face", "peer", "peer_portal") if getattr(self, k) is not None]
            if extra:
                raise ValueError(f"portal {self.name!r}: {', '.join(extra)} belong to an outgoing portal")
        return self

    def box(self, domain: Box, spacing: float) -> tuple[Vec3, Vec3]:
        """The region an outgoing portal takes water from."""
        if self.region is not None:
            return self.region.lower, self.region.upper
        lo, hi = list(domain.lower), list(domain.upper)
        axis = "xyz".index(self.face[0])
        if self.face[1] == "+":
            lo[axis] = hi[axis] - 2.0 * spacing
        else:
            hi[axis] = lo[axis] + 2.0 * spacing
        return tuple(lo), tuple(hi)


class _SolverCommon(_Section):
    """``[solver]``: what every method reads. Each method's own keys are on its class below, and
    ``method`` picks the class: a key of another method is refused (SolverSettings)."""

    frame_rate: float = Field(60.0, description="simulated frames a second, within [1, 1000] (see _frame_rate)")
    substeps: int = Field(2, ge=1, le=1000, description="substeps per frame, at least")
    max_substeps: int = Field(
        20, ge=1, le=100000,
        description="the CFL condition may add substeps up to this; beyond it DFSPH and WCSPH shorten their substeps "
        "(the water runs slower), PBF keeps them and limits each move to half a support radius",
    )
    cfl: float = Field(0.4, gt=0.0, le=1.0, description="Courant number: dt <= cfl * particle spacing / max speed")
    time_step: float | None = Field(
        None, gt=0.0, le=0.1, description="a fixed substep length in seconds instead of the CFL condition"
    )
    gravity: Vec3 = (0.0, -9.81, 0.0)
    max_speed: float = Field(
        20.0, gt=0.0, le=1000.0, description="m/s: a safety limit on particle speed, far above a waterfall's"
    )
    seed: int = 0

    @field_validator("frame_rate")
    @classmethod
    def _frame_rate(cls, v):
        return _within(v, 1.0, 1000.0, "frames a second",
                       "the CFL condition and the emitters' count are read once a frame, so a frame lasts at most a "
                       "second (1e-3 made frames of 1000 s, each a minute or more), and a frame shorter than a "
                       "millisecond is shorter than its own fixed cost")

    @model_validator(mode="after")
    def _range(self):
        if self.max_substeps < self.substeps:
            raise ValueError(f"max_substeps ({self.max_substeps}) must be at least substeps ({self.substeps})")
        return self

    @model_validator(mode="after")
    def _substeps_per_frame(self):
        """A frame's substeps, 1 / frame_rate / time_step with a fixed step, else at most
        max_substeps, within MAX_SUBSTEPS (with a fixed step, max_substeps is not used)."""
        frame = 1.0 / self.frame_rate
        if self.time_step is not None:
            n = round(frame / self.time_step)
            if n > MAX_SUBSTEPS:
                raise ValueError(
                    f"solver.time_step {self.time_step:g} s makes {n:,} substeps a frame (1 / solver.frame_rate "
                    f"{self.frame_rate:g} / time_step), more than {MAX_SUBSTEPS:,}: raise time_step to at least "
                    f"{frame / MAX_SUBSTEPS:.3g} s, or leave it out for the CFL condition"
                )
        elif self.max_substeps > MAX_SUBSTEPS:
            raise ValueError(
                f"solver.max_substeps {self.max_substeps:,} allows more than {MAX_SUBSTEPS:,} substeps a frame "
                f"(with solver.cfl {self.cfl:g}, the CFL condition would ask for them): lower it to {MAX_SUBSTEPS:,}"
            )
        return self


class PBFSettings(_SolverCommon):
    """Position-based fluids (Macklin & Mueller 2013): the real-time default."""

    method: Literal["pbf"] = "pbf"
    pbf_iterations: int = Field(4, ge=1, le=100, description="Jacobi iterations of the density constraint a substep")
    pbf_relaxation: Positive = Field(100.0, description="epsilon in eq. 11, constraint force mixing")
    vorticity_epsilon: float = Field(0.01, ge=0.0, le=1.0, description="vorticity confinement strength, eq. 16")


class DFSPHSettings(_SolverCommon):
    """Divergence-free SPH (Bender & Koschier 2015, 2017): the accurate choice."""

    method: Literal["dfsph"] = "dfsph"
    density_tolerance: float = Field(0.001, gt=0.0, le=0.1, description="mean relative density error")
    divergence_tolerance: float = Field(
        0.0001, gt=0.0, le=0.1, description="mean relative density change per substep, dt (D rho / Dt) / rho0"
    )
    max_iterations: int = Field(100, ge=1, le=10000, description="of each solve, a substep")


class WCSPHSettings(_SolverCommon):
    """Weakly compressible SPH (Becker & Teschner 2007): the reference baseline."""

    method: Literal["wcsph"] = "wcsph"
    stiffness: Positive = Field(50000.0, description="B in Tait's equation, eq. 7, in Pa")
    exponent: float = Field(7.0, ge=1.0, le=10.0, description="gamma in Tait's equation")


SOLVER_SETTINGS = {"pbf": PBFSettings, "dfsph": DFSPHSettings, "wcsph": WCSPHSettings}


def _method_of(data) -> str:
    """The union's tag: ``method``, PBF when the section leaves it out (a name pydantic reports as
    the unknown tag when it is none of the three)."""
    return data.get("method", "pbf") if isinstance(data, dict) else getattr(data, "method", "pbf")


SolverSettings = Annotated[
    Annotated[PBFSettings, Tag("pbf")]
    | Annotated[DFSPHSettings, Tag("dfsph")]
    | Annotated[WCSPHSettings, Tag("wcsph")],
    Discriminator(_method_of),
]


class EdgeBlend(_Section):
    """Soft edges where this projector's picture overlaps a neighbour's: over each edge's width
    the light ramps from nothing to full (Bourke's curve, ``power``), so two overlapping ramps
    add up to one; ``gamma`` undoes the projector's response so that they do so in light."""

    left: float = Field(0.0, ge=0.0, le=0.5, description="share of the region's width blended at its left edge")
    right: float = Field(0.0, ge=0.0, le=0.5, description="... at its right edge")
    top: float = Field(0.0, ge=0.0, le=0.5, description="share of the region's height blended at its top edge")
    bottom: float = Field(0.0, ge=0.0, le=0.5, description="... at its bottom edge")
    gamma: float = Field(2.2, ge=1.0, le=4.0, description="the projector's gamma: light = value ** gamma")
    power: float = Field(2.0, ge=1.0, le=8.0, description="the ramp's steepness at its middle (1: linear)")


def _convex(corners) -> bool:
    """True if the four corners, in order, make a convex quadrilateral that is not too thin."""
    c = [complex(x, y) for x, y in corners]
    crosses = [((c[(i + 1) % 4] - c[i]).conjugate() * (c[(i + 2) % 4] - c[(i + 1) % 4])).imag for i in range(4)]
    area = 0.5 * abs(sum((c[i].conjugate() * c[(i + 1) % 4]).imag for i in range(4)))
    return area > 1e-3 and (all(x > 0 for x in crosses) or all(x < 0 for x in crosses))


class ProjectorOutput(_Section):
    """One projector (a monitor output): which part of the picture it shows, and the corner-pin
    warp that lands that part on the wall. Coordinates are shares of a width or height, from
    the top-left corner, y down."""

    monitor: int = Field(0, ge=0, le=63, description="the monitor, in `waterrock project --list-monitors` order")
    region: tuple[Share, Share, Share, Share] = Field(
        (0.0, 0.0, 1.0, 1.0), description="left, top, right, bottom of the picture part shown"
    )
    corners: tuple[Point2, Point2, Point2, Point2] = Field(
        IDENTITY_CORNERS,
        description="where the region's top-left, top-right, bottom-right, bottom-left land on the output",
    )
    blend: EdgeBlend = EdgeBlend()
    grid_shape: tuple[Annotated[int, Field(ge=2, le=8)], Annotated[int, Field(ge=2, le=8)]] = Field(
        (3, 3), description="control points of the grid warp across and down the output (evenly spaced, edges included)"
    )
    grid: list[tuple[Annotated[float, Field(ge=-0.5, le=0.5)], Annotated[float, Field(ge=-0.5, le=0.5)]]] = Field(
        [], description="the grid warp's touch-up: each control point's offset (output shares), row by row from the "
        "top-left; empty: none. Applied on top of the corner pin or of the projection onto the rock",
    )

    @model_validator(mode="after")
    def _shape(self):
        x0, y0, x1, y1 = self.region
        if x1 - x0 < 0.01 or y1 - y0 < 0.01:
            raise ValueError(f"region {self.region} must have right > left and bottom > top")
        if not _convex(self.corners):
            raise ValueError(f"corners {self.corners} must be a convex quadrilateral, listed around it in order")
        cols, rows = self.grid_shape
        if self.grid and len(self.grid) != cols * rows:
            raise ValueError(f"grid has {len(self.grid)} offsets but grid_shape {list(self.grid_shape)} needs "
                             f"{cols * rows} ({cols} across x {rows} down), or none")
        return self


class GovernorSettings(_Section):
    """``[governor]``: the frame-rate governor of a window or the projectors (app/governor.py)."""

    enabled: bool = True
    target_fps: float | None = Field(None, gt=1.0, le=1000.0, description="displayed frames a second to hold "
                                     "(default: solver.frame_rate, at most 60)")
    low: float = Field(0.9, gt=0.0, le=1.0, description="below this share of the target it steps down")
    high: float = Field(0.97, gt=0.0, le=1.0, description="at this share of the target, with headroom, it steps up")
    headroom: float = Field(0.7, gt=0.0, le=1.0, description="steps up while a frame's work takes less than this "
                            "share of the target's frame time")
    down_after: int = Field(1, ge=1, le=60, description="seconds below the target before a step down (each step "
                            "is one; the steps up wait longer, so it does not hunt)")
    up_after: int = Field(5, ge=1, le=600, description="seconds with headroom before a step up")
    cooldown: float = Field(10.0, ge=0.0, le=3600.0, description="seconds after a step down before a step up")
    min_scale: float = Field(0.5, gt=0.0, le=1.0, description="the lowest render scale it may set")
    min_trails: float = Field(0.5, gt=0.0, le=1.0, description="the lowest share of the trails' length and count")
    min_water: float = Field(0.5, gt=0.0, le=1.0, description="the lowest share of the emitters' rate")

    @model_validator(mode="after")
    def _band(self):
        if self.high < self.low:
            raise ValueError(f"high {self.high} is below low {self.low}: the governor would hunt")
        return self

    def target(self, frame_rate: float) -> float:
        return self.target_fps if self.target_fps is not None else min(float(frame_rate), 60.0)


class ConsoleSettings(_Section):
    """``[console]``: what an operator reaches the running app through (app/console.py). Each
    listens on ``interface`` (127.0.0.1: this machine only) and is off with port 0; a port that is
    taken is a warning, and the water runs on without it."""

    interface: str = Field("127.0.0.1", min_length=1, description="the address the console listens on")
    status_port: int = Field(5780, ge=0, le=65535, description="the status page and its JSON (HTTP); 0: off")
    osc_port: int = Field(5790, ge=0, le=65535, description="OSC control (UDP), advertised by OSCQuery; 0: off")
    oscquery_port: int = Field(5791, ge=0, le=65535, description="OSCQuery's HTTP and Zeroconf; 0: off")
    osc_allow: tuple[IPvAnyNetwork, ...] = Field(
        (), description="OSC control's senders beyond this machine: IP addresses or networks ('10.0.0.20', "
        "'10.0.0.0/24'); empty: every sender that reaches the interface")
    watch_scene: bool = Field(True, description="follow edits of the scene file while running (app/live.py): the "
                              "look at once, the water restarted for a change of its physics; false: read once")
    ndi: str = Field("", max_length=200, description="send the picture live as an NDI source of this name, for "
                     "TouchDesigner, Resolume, MadMapper or OBS (app/video_out.py; the ndi extra: pip install "
                     "'waterrock[ndi]'); empty: off")


class ProjectionOutputs(_Section):
    """``waterrock project``'s outputs; none listed: the whole picture on the primary monitor."""

    outputs: list[ProjectorOutput] = []
    vsync_output: int = Field(0, ge=0, description="the one output whose buffer swap waits for its refresh")
    calibration: Path | None = Field(
        None, description="the projector calibration (`waterrock calibrate --auto` writes it): outputs it holds "
        "paint the picture onto the rock's shape from their projector. Unset: <scene>.procam.json beside the "
        "scene, when it exists",
    )
    on_rock: bool = Field(True, description="false: ignore the projector calibration and use the corner pins")
    drift_warn_px: float = Field(
        1.0, gt=0.0, le=100.0, description="`waterrock calibrate --check` warns when an output has drifted more "
        "than this many projector pixels since it was calibrated",
    )
    check_time: str | None = Field(
        None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="HH:MM, local time: each night then, a running `waterrock project` pauses for a few seconds "
        "to measure the calibrated outputs' drift (as `calibrate --check`) and logs it; unset: never",
    )

    @model_validator(mode="after")
    def _vsync(self):
        if self.outputs and self.vsync_output >= len(self.outputs):
            raise ValueError(f"vsync_output {self.vsync_output} but only {len(self.outputs)} outputs")
        return self


class Scene(_Section):
    name: str = "untitled"
    description: str = ""
    domain: Domain
    rock: Rock = Rock()
    fluid: Fluid = Fluid()
    emitters: list[Emitter] = []
    sinks: list[Sink] = []
    solver: SolverSettings = PBFSettings()
    tracking: TrackingSettings = TrackingSettings()
    render: RenderSettings = RenderSettings()
    projection: ProjectionOutputs = ProjectionOutputs()
    governor: GovernorSettings = GovernorSettings()
    console: ConsoleSettings = ConsoleSettings()
    portals: list[Portal] = Field([], max_length=8)
    path: Path | None = Field(None, exclude=True, description="the file this scene was read from")

    @model_validator(mode="after")
    def _fits(self):
        if (
            min(u - lo for lo, u in zip(self.domain.lower, self.domain.upper, strict=True))
            < 2 * self.fluid.support_radius
        ):
            raise ValueError("domain is thinner than 2 kernel support radii on some axis")
        return self

    @model_validator(mode="after")
    def _portals_differ(self):
        names = [p.name for p in self.portals]
        if len(set(names)) != len(names):
            raise ValueError(f"portal names must differ: {names}")
        ports = [p.port for p in self.portals if p.direction == "in"]
        if len(set(ports)) != len(ports):
            raise ValueError(f"two inflows listen on one port: {ports}")
        return self

    @model_validator(mode="after")
    def _emitters_fit(self):
        """Each emitter within what the solver can run: no faster than its speed limit (which would
        clamp the new water at once; 1e30 m/s emitted for ever), and no more particles a frame
        than the whole budget holds (1e12 a second took 10^8 launches a substep)."""
        s, budget = self.solver, self.fluid.max_particles
        for k, e in enumerate(self.emitters):
            if e.speed > s.max_speed:
                raise ValueError(
                    f"emitters[{k}].speed {e.speed:g} m/s is faster than solver.max_speed {s.max_speed:g} m/s, "
                    f"the particles' speed limit: lower the speed or raise max_speed"
                )
            per_frame = _emitter_rate(e, self.fluid.spacing) / s.frame_rate
            if per_frame > budget:
                what = (f"emitters[{k}].rate {e.rate:g} particles/s" if e.rate is not None else
                        f"emitters[{k}] (its opening at speed {e.speed:g} m/s, as emitters[{k}].rate leaves it)")
                raise ValueError(
                    f"{what} brings {per_frame:,.0f} particles a frame at solver.frame_rate {s.frame_rate:g}, more "
                    f"than the whole budget, fluid.max_particles {budget:,}: at most {budget * s.frame_rate:,.0f} "
                    f"particles/s"
                )
        return self


def _emitter_rate(e: Emitter, spacing: float) -> float:
    """Particles a second an emitter brings: its rate, or its opening's layers on the lattice of
    the spacing (at least its centre) at its speed (solver.sources)."""
    if e.rate is not None:
        return e.rate
    area = math.pi * e.radius**2 if e.shape == "disk" else e.size[0] * e.size[1]
    return max(area / spacing**2, 1.0) * e.speed / spacing


def _format_errors(path: Path | str, err: ValidationError) -> str:
    lines = [f"{path}: invalid scene ({err.error_count()} problem{'s' if err.error_count() > 1 else ''})"]
    for e in err.errors():
        loc = list(e["loc"])
        method = None
        if loc[:1] == ["solver"] and len(loc) > 1 and loc[1] in SOLVER_SETTINGS:
            method = loc.pop(1)  # the union's tag: [solver.pbf.stiffness] is the scene's [solver.stiffness]
        if e["type"] == "union_tag_invalid":
            loc.append("method")  # the key at fault, not the section
        key = ".".join(str(p) for p in loc) or "(top level)"
        reason = e["msg"]
        if e["type"] == "extra_forbidden":
            reason = "unknown key"
            owners = [m for m, cls in SOLVER_SETTINGS.items() if loc[-1] in cls.model_fields]
            if method is not None and owners:
                reason = f"not a setting of method = '{method}' (it is one of {', '.join(owners)}'s)"
        elif e["type"] == "union_tag_invalid":
            reason = f"must be one of {', '.join(SOLVER_SETTINGS)}, not {e.get('ctx', {}).get('tag')!r}"
        got = repr(e.get("input"))
        # a check across sections (loc is a whole section or the scene) names its keys itself
        shown = e["type"] != "missing" and not isinstance(e.get("input"), dict)
        lines.append(f"  [{key}] {reason} (got {got if len(got) <= 80 else got[:77] + '...'})" if shown
                     else f"  [{key}] {reason}")
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
            "projection": scene.projection.model_copy(update={"calibration": (base / cal).resolve()})
            if (cal := scene.projection.calibration) is not None and not cal.is_absolute()
            else scene.projection,
        }
    )


def read_scene_text(p: Path) -> dict:
    """The TOML data of the scene file at ``p``; every way a file can fail to be a scene's text
    (missing, a directory, unreadable, not UTF-8, not TOML, nested past reason) is a SceneError
    naming the file and the reason."""
    if not p.exists():
        raise SceneError(f"{p}: scene file not found")
    if p.is_dir():
        raise SceneError(f"{p}: is a directory, not a scene file")
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise SceneError(f"{p}: cannot read the scene file: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise SceneError(f"{p}: not UTF-8 text: byte 0x{raw[err.start]:02x} on line {line}; "
                         f"save the file as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SceneError(f"{p}: not valid TOML: {err}") from None
    except RecursionError:
        raise SceneError(f"{p}: not a usable scene: its arrays or tables are nested too deeply") from None


def _check_named_file(source: Path | str, key: str, path: Path | None, folder_ok: bool = False,
                      empty_ok: bool = False) -> None:
    if path is None:
        return
    problem = files.file_problem(path, folder_ok=folder_ok, empty_ok=empty_ok)
    if problem is not None:
        raise SceneError(f"{source}: [{key}] {path}: {problem}")


def check_scene_files(scene: Scene, calibration: bool = True) -> None:
    """Every file the scene names exists and is a non-empty file (a depth recording may be a
    folder of PNGs): checked when the scene loads, so that a missing rock or recording stops
    the command at once, in one line, not minutes later in a thread. The contents are checked
    by their readers (the mesh by ``mesh_sdf.load_rock_mesh``, before the solver starts).
    ``calibration`` False: the calibration file may be missing (``waterrock calibrate`` writes it).
    The learned background file is the tracker's to write, so it may be missing too."""
    source = scene.path or "<scene>"
    _check_named_file(source, "rock.mesh", scene.rock.mesh)
    t = scene.tracking
    if t.source in ("video", "depth_recording"):
        _check_named_file(source, "tracking.path", t.path, folder_ok=t.source == "depth_recording")
    if calibration:  # its contents are the tracker's to judge: a torn one is named, and it runs without
        _check_named_file(source, "tracking.calibration", t.calibration, empty_ok=True)
    if t.background_file is not None and t.background_file.is_dir():
        raise SceneError(f"{source}: [tracking.background_file] {t.background_file}: is a directory, not a file")


def load_scene(path: str | Path, check_files: bool = True) -> Scene:
    """Read and validate a scene: a path to a TOML file, or the name of a shipped scene.

    ``check_files``: also check the files it names (:func:`check_scene_files`)."""
    p = scene_path(path)
    scene = parse_scene(read_scene_text(p), p)
    if check_files:
        check_scene_files(scene)
    return scene


def _is_tables(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_item(value, table: bool = False):
    """``value`` as an operator writes it: a list of tables as ``[[...]]`` entries, a table inside
    one of them inline (``blend = { left = 0.1 }``) and every array on one line, like a corner."""
    if _is_tables(value):
        entries = tomlkit.aot()
        for v in value:
            entries.append(_toml_item(v, table=True))
        return entries
    if isinstance(value, dict):
        t = tomlkit.table() if table else tomlkit.inline_table()
        for k, v in value.items():
            t[k] = _toml_item(v)
        return t
    return tomlkit.item(value)


def _edit_table(table, value: dict) -> None:
    """Make ``table`` (a parsed table) hold ``value``, key by key: the keys that stay keep their
    comments and layout (``blend.left = 0.1`` stays dotted), the others go, new ones are added."""
    for k in [k for k in table if k not in value]:
        del table[k]
    for k, v in value.items():
        old = table.get(k)
        if isinstance(v, dict) and isinstance(old, Mapping):  # a table, inline, or dotted over lines
            _edit_table(old, v)
        elif isinstance(old, AoT) and _is_tables(v):
            while len(old) > len(v):
                del old[-1]
            for i, w in enumerate(v):
                if i < len(old):
                    _edit_table(old[i], w)
                else:
                    old.append(_toml_item(w, table=True))
        else:
            table[k] = _toml_item(v)


def _carry_comments(old, new) -> None:
    """Each end-of-line comment of the ``old`` items onto the same keys of ``new``, which is built
    afresh; never into an inline table, where TOML allows no comment."""
    if isinstance(old, Item) and not isinstance(old, AoT) and old.trivia.comment and not new.trivia.comment:
        new.trivia.comment_ws, new.trivia.comment = old.trivia.comment_ws or "  ", old.trivia.comment
    if isinstance(new, AoT) and isinstance(old, AoT):
        for a, b in zip(old, new, strict=False):  # the entries that stay
            _carry_comments(a, b)
    elif isinstance(new, Table) and isinstance(old, Mapping):
        for k in new:
            if k in old:
                _carry_comments(old[k], new[k])


def _detach_lead_comments(doc) -> list[tuple[Table, str]]:
    """Each table header with the comment and blank lines just above it, taken out of the body
    that holds them. tomlkit files them under the table before, so they went with it: a save
    that dropped an output, or moved ``[projection]``, lost the comment above the next section.
    Put back into each header's own indent after the edit (:func:`save_projection`), they render
    where they were and stay with the header they stand above; not before the edit, as tomlkit
    indents the keys it adds to a table by the spaces it finds in that table's indent. The lines
    taken out become ``Null``, as tomlkit itself leaves a removed item (indices stay)."""
    leads: list[tuple[Table, str]] = []
    lines: list = []  # (body, index) of the comment and blank lines since the last key or header

    def walk(body) -> None:
        for i, (key, item) in enumerate(body):
            if key is None and isinstance(item, (Comment, Whitespace)):
                lines.append((body, i))
                continue
            tables = item.body if isinstance(item, AoT) else [item] if isinstance(item, Table) else []
            if not tables:
                lines.clear()
            for t in tables:
                if not t.is_super_table():  # a super table has no header of its own
                    leads.append((t, "".join(b[j][1].as_string() for b, j in lines)))
                    for b, j in lines:
                        b[j] = (None, Null())
                    lines.clear()
                walk(t.value.body)

    walk(doc.body)
    return leads


def _set_projection_in_place(doc, section: dict) -> None:
    if "projection" in doc:
        _edit_table(doc["projection"], section)
    else:
        doc.add("projection", _toml_item(section, table=True))


def _set_projection_at_end(doc, section: dict) -> None:
    new = _toml_item(section, table=True)
    if "projection" in doc:
        _carry_comments(doc["projection"], new)
        del doc["projection"]
    doc.add("projection", new)


def save_projection(path: str | Path, projection: ProjectionOutputs) -> Path:
    """Write ``projection`` into the scene file at ``path`` as its ``[projection]`` section.

    The file is edited as a parsed TOML document (tomlkit), so the rest of it is kept as it was,
    comments and order included. The section is first edited where it is, key by key, which
    keeps its own comments; where that does not give back exactly the old scene with the new
    section (tomlkit places new keys of a section written with dotted keys, ``projection.on_rock
    = true``, inside the next table), the section is moved to the end of the file as a table,
    keeping the end-of-line comments of its keys. A save that would change anything else is
    refused. The result is validated before it replaces the file (atomically; the old one stays
    as .bak).
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    section = projection.model_dump(mode="json", exclude_none=True)
    if "calibration" in section:  # written as the operator wrote it: beside the scene, relative
        section["calibration"] = os.path.relpath(section["calibration"], path.resolve().parent)
    wanted = {**{k: v for k, v in data.items() if k != "projection"}, "projection": section}
    for set_projection in (_set_projection_in_place, _set_projection_at_end):
        try:
            doc = tomlkit.parse(text)
            leads = _detach_lead_comments(doc)
            set_projection(doc, section)
            for table, lead in leads:
                table.trivia.indent = lead + table.trivia.indent
            new_text = tomlkit.dumps(doc)
            if tomllib.loads(new_text) == wanted:
                break
        except (TOMLKitError, tomllib.TOMLDecodeError):
            continue  # tomlkit cannot edit this layout that way: the next way, or the refusal below
    else:
        raise SceneError(f"{path}: cannot write [projection] without changing the rest of the file; "
                         f"the file is unchanged")
    parse_scene(tomllib.loads(new_text), path)  # never write a scene that would not load
    # each write through its own temporary (two saves at once shared one fixed name and left
    # the scene unloadable), fsynced, then renamed: a power cut leaves the old scene or the new
    files.write_text(path.with_name(path.name + ".bak"), text)
    files.write_text(path, new_text)
    return path
