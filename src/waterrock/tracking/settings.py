"""The scene's [tracking] section: where visitors come from and how they become obstacles.

Every key has a default, so ``[tracking]`` may be left out of a scene: it then runs the
synthetic visitors, which is what the demo shows when no camera is attached.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Vec3 = tuple[float, float, float]
Positive = Annotated[float, Field(gt=0.0)]

SourceKind = Literal[
    "none", "synthetic", "camera", "video", "stream", "depth_recording", "realsense", "kinect"
]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # '', a hostname: it may be reached from elsewhere


class TrackingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # --- where frames come from (see sources.open_source) ---
    source: SourceKind = Field("synthetic", description="'none' with osc = true: OSC/TUIO only")
    camera_index: int = Field(0, ge=0, description="OpenCV camera index, source = 'camera'")
    path: Path | None = Field(
        None, description="video file, or depth recording: PNG folder, .npz, RealSense .bag/.db3, Azure Kinect .mkv"
    )
    url: str = Field("", description="stream URL (rtsp://, http://), source = 'stream'")
    loop: bool = Field(True, description="replay video files and recordings forever")
    realtime: bool = Field(True, description="pace files and synthetic frames at their own frame rate")
    synthetic_script: Literal["gather", "walk", "crossing", "reach", "hill"] = Field(
        "gather", description="the scripted visitors; on a scene with a rock they stand on its top"
    )
    width: int = Field(640, ge=16, le=8192, description="live sensors: requested frame width")
    height: int = Field(480, ge=16, le=8192, description="live sensors: requested frame height")
    fps: int = Field(30, ge=1, le=240, description="live sensors: requested frame rate")

    # --- image/depth pixels to scene metres (see calibrate.py) ---
    calibration: Path | None = Field(
        None, description="JSON written by `waterrock calibrate`, beside the scene"
    )
    floor_width: Positive = Field(4.0, description="colour without calibration: metres the image width spans")

    # --- segmentation ---
    segmentation: Literal["auto", "depth", "color"] = Field(
        "auto", description="auto: depth when frames have it"
    )
    background_frames: int = Field(
        30, ge=1, le=10000, description="depth: frames of the empty scene learned at start"
    )
    background_file: Path | None = Field(
        None, description="the background (depth or colour) is loaded from here, and saved here when learned (.npz)"
    )
    noise_k: float = Field(4.0, ge=0.0, le=100.0, description="foreground beyond k x per-pixel depth noise")
    depth_step_fraction: float = Field(
        0.01, ge=0.0, le=0.5, description="... and beyond this share of the depth"
    )
    min_depth_step_mm: float = Field(25.0, ge=0.0, description="... and beyond this, whatever the noise")
    min_height: float = Field(
        0.12, ge=0.0, description="m above floor or rock: lower edge of the height band"
    )
    max_height: float = Field(2.5, gt=0.0, description="m above floor or rock: upper edge of the height band")
    touch_plane: tuple[float, float, float, float] | None = Field(
        None, description="projection surface n_x, n_y, n_z, d (n.p = d, metres); none: no touch detection"
    )
    touch_band: Positive = Field(0.08, description="m from the touch plane in which a hand touches the water")
    color_var_threshold: Positive = Field(
        32.0, description="colour: foreground beyond this squared colour distance over the pixel's variance (MOG2's)"
    )
    # colour background (segment.ColorSegmenter): learned at start, held under tracks, shadows told apart
    background_seconds: float = Field(
        2.0, ge=0.0, le=600.0, description="colour: s at start whose per-pixel median is the floor; 0: the first frame"
    )
    color_noise: float = Field(3.0, gt=0.0, le=64.0, description="colour: least per-pixel noise sigma, grey levels")
    drift_seconds: float = Field(
        5.0, gt=0.0, le=3600.0, description="colour: s over which the background follows slow changes of light"
    )
    absorb_seconds: float = Field(
        30.0, gt=0.0, le=86400.0, description="colour: s over which foreground not under a track (a moved bench) fades"
    )
    shadow_ratio: tuple[Annotated[float, Field(ge=0.0, le=1.0)], Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        (0.4, 0.9), description="colour: a shadow leaves between these shares of the floor's brightness"
    )
    shadow_chroma: float = Field(
        0.1, ge=0.0, le=1.0, description="colour: most colour change of a shadow (sine of the angle to the floor's)"
    )
    shadow_ncc: float = Field(
        0.7, ge=0.0, le=1.0, description="colour: least correlation of a shadow's patch with the floor's; 1: no shadows"
    )
    merge_distance: float = Field(
        0.3, ge=0.0, le=2.0, description="colour: m between blobs' floor outlines that are one person; 0: no merging"
    )
    fragment_area: float = Field(
        0.06, gt=0.0, le=4.0,
        description="colour: m^2 of floor; a smaller blob is a piece of a person (hair, legs) and joins the nearest "
        "blob within merge_distance; two larger ones are two people, never joined (a person is about 0.1)",
    )

    open_px: int = Field(3, ge=0, le=64, description="morphological opening: removes speckle")
    close_px: int = Field(7, ge=0, le=64, description="morphological closing: fills holes in a body")

    # --- blobs and tracks ---
    min_blob_area: Positive = Field(0.03, description="m^2: smaller blobs are not people")
    max_blob_area: Positive = Field(4.0, description="m^2: larger blobs are not people")
    min_hand_area: Positive = Field(0.002, description="m^2 of touch-band pixels that make a hand")
    gate: Positive = Field(0.6, description="m: a detection farther than this from a track is not it")
    gate_growth: float = Field(1.5, ge=0.0, description="m/s: the gate widens while a track coasts unseen")
    confirm_frames: int = Field(3, ge=1, le=100, description="frames seen before a track becomes an obstacle")
    drop_frames: int = Field(10, ge=0, le=1000, description="frames unseen before a track is dropped")
    alpha: float = Field(0.85, gt=0.0, le=1.0, description="alpha-beta filter: position gain")
    beta: float = Field(0.25, ge=0.0, le=2.0, description="alpha-beta filter: velocity gain")
    max_person_speed: Positive = Field(3.0, description="m/s: no person's velocity is faster (a brisk walk)")
    max_hand_speed: Positive = Field(6.0, description="m/s: no hand's velocity is faster (a swing of the arm)")
    coast_time: float = Field(
        0.3, ge=0.0, le=10.0, description="s: an unseen track's velocity decays with this time constant"
    )

    # --- obstacles ---
    person_height: Positive = Field(1.7, description="m, colour only (depth measures it)")
    min_radius: Positive = 0.12
    max_radius: Positive = 0.6
    hand_radius: Positive = 0.07

    # --- the runner: stalls, fading, reconnects ---
    stall_timeout: Positive = Field(0.2, description="s without a frame before obstacles start to fade")
    fade_time: Positive = Field(0.5, description="s over which a stalled source's obstacles fade out")
    stall_reconnect: Positive = Field(3.0, description="s one read may last before the source is reopened")
    reconnect_initial: Positive = Field(0.25, description="s, first reconnect delay, doubled on each failure")
    reconnect_max: Positive = Field(8.0, description="s, longest reconnect delay")
    process: bool = Field(
        True, description="the tracker in a process of its own (see process.py); false: a thread beside the water"
    )
    process_timeout: Positive = Field(
        5.0, description="s without a heartbeat from the tracker process before it is killed and started again"
    )

    # --- OSC / TUIO (see osc.py) ---
    osc: bool = Field(False, description="also listen for TUIO 1.1 and /waterrock/obstacle messages")
    osc_host: str = Field("127.0.0.1", description="beyond loopback (a LAN, 0.0.0.0) only with osc_allow")
    osc_allow: tuple[str, ...] = Field(
        (), description="senders heard: IP addresses or networks ('10.0.0.20', '10.0.0.0/24'); empty: all (loopback)"
    )
    osc_port: int = Field(3333, ge=0, le=65535, description="3333 is TUIO's port; 0 picks a free one")
    tuio_origin: Vec3 = Field((-2.0, 0.0, -2.0), description="scene point of TUIO (0, 0)")
    tuio_u: Vec3 = Field((4.0, 0.0, 0.0), description="scene vector from TUIO (0, 0) to (1, 0)")
    tuio_v: Vec3 = Field((0.0, 0.0, 4.0), description="scene vector from TUIO (0, 0) to (0, 1)")
    osc_radius: Positive = Field(0.25, description="m, radius of a TUIO cursor")
    osc_height: float = Field(1.7, ge=0.0, description="m, a TUIO cursor is a capsule this tall; 0: a sphere")
    osc_timeout: Positive = Field(1.0, description="s before an OSC obstacle that is not refreshed fades")
    osc_max_objects: int = Field(
        64, ge=1, le=10000, description="live OSC/TUIO objects; new ones beyond are dropped and counted"
    )
    osc_max_rate: int = Field(
        4000, ge=1, le=1_000_000, description="OSC messages a second (64 TUIO cursors at 60 Hz); beyond: dropped"
    )

    @model_validator(mode="after")
    def _ordered(self):
        if self.max_height <= self.min_height:
            raise ValueError(f"max_height ({self.max_height}) must exceed min_height ({self.min_height})")
        if self.max_radius < self.min_radius:
            raise ValueError(
                f"max_radius ({self.max_radius}) must be at least min_radius ({self.min_radius})"
            )
        lo, hi = self.shadow_ratio
        if hi <= lo:
            raise ValueError(f"shadow_ratio ({lo}, {hi}): the upper share must exceed the lower")
        if self.max_blob_area <= self.min_blob_area:
            raise ValueError("max_blob_area must exceed min_blob_area")
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError("reconnect_max must be at least reconnect_initial")
        if self.source in ("video", "depth_recording") and self.path is None:
            raise ValueError(f"source = '{self.source}' needs path")
        if self.source == "stream" and not self.url:
            raise ValueError("source = 'stream' needs url")
        self._osc_senders()
        return self

    def _osc_senders(self) -> None:
        """A listener beyond this machine hears anyone on the network: one stray packet then places
        visitors in the water, so it hears only the senders the scene names."""
        for sender in self.osc_allow:
            try:
                ipaddress.ip_network(sender, strict=False)
            except ValueError:
                raise ValueError(
                    f"osc_allow: {sender!r} is not an IP address or network ('192.168.1.20', '10.0.0.0/24')"
                ) from None
        if not self.osc_allow and not is_loopback(self.osc_host):
            raise ValueError(
                f"osc_host = {self.osc_host!r} listens beyond this machine: list the senders it may hear "
                "in osc_allow (IP addresses or networks)"
            )

    def resolved(self, base: Path) -> TrackingSettings:
        """A copy with relative paths made absolute against the scene file's folder."""
        update = {}
        for key in ("path", "calibration", "background_file"):
            p = getattr(self, key)
            if p is not None and not p.is_absolute():
                update[key] = (base / p).resolve()
        return self.model_copy(update=update) if update else self
