"""Scripted visitors rendered as a depth camera would see them, with exact ground truth.

A person is a capsule from the floor to their height (the body, head included) and, while
reaching, a thin capsule from the shoulder to the hand. The depth image is ray cast per pixel
(vectorised) against the room's planes (the floor, optionally a wall that is the projection
surface) and the capsules, so the tests know where everyone is to the millimetre.

On a scene with a rock people stand on (the rock hill), a :class:`Ground` lifts everyone onto
the rock's top and puts the rock in the empty room's depth, as a camera on the ceiling sees it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from waterrock.tracking.calibrate import DepthCalibration, Intrinsics
from waterrock.tracking.frame import Frame
from waterrock.tracking.sources import FrameSource


@dataclass(frozen=True)
class Reach:
    """Between t0 and t1 the person's hand is at ``hand`` (a scene point)."""

    t0: float
    t1: float
    hand: tuple[float, float, float]


@dataclass(frozen=True)
class Person:
    """Walks through ``waypoints`` (t, x, z) piecewise linearly; stands before and after."""

    waypoints: tuple[tuple[float, float, float], ...]
    height: float = 1.7
    radius: float = 0.2
    reaches: tuple[Reach, ...] = ()

    def position(self, t: float) -> np.ndarray:
        w = np.asarray(self.waypoints, np.float64)
        return np.array([np.interp(t, w[:, 0], w[:, 1]), 0.0, np.interp(t, w[:, 0], w[:, 2])])

    def velocity(self, t: float) -> np.ndarray:
        w = np.asarray(self.waypoints, np.float64)
        i = np.searchsorted(w[:, 0], t, side="right")
        if i == 0 or i >= len(w):
            return np.zeros(3)
        dt = w[i, 0] - w[i - 1, 0]
        return np.array([(w[i, 1] - w[i - 1, 1]) / dt, 0.0, (w[i, 2] - w[i - 1, 2]) / dt])

    def hand(self, t: float) -> np.ndarray | None:
        for r in self.reaches:
            if r.t0 <= t < r.t1:
                return np.asarray(r.hand, np.float64)
        return None

    def capsules(self, t: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
        p = self.position(t)
        r = self.radius
        body = (p + [0.0, r, 0.0], p + [0.0, self.height - r, 0.0], r)
        hand = self.hand(t)
        if hand is None:
            return [body]
        shoulder = p + [0.0, 0.8 * self.height, 0.0]
        return [body, (shoulder, hand, 0.05)]


@dataclass(frozen=True)
class PersonTruth:
    index: int
    position: np.ndarray  # on the floor, under the head
    velocity: np.ndarray
    height: float
    radius: float
    hand: np.ndarray | None


class Ground:
    """What synthetic visitors stand on: the top of the scene's rock as heights over a grid in x
    and z, the floor (y = 0) beyond it. Picklable, so it crosses to the tracker's process."""

    def __init__(self, xs: np.ndarray, zs: np.ndarray, heights: np.ndarray):
        self.xs, self.zs = np.asarray(xs, np.float64), np.asarray(zs, np.float64)
        self.heights = np.maximum(np.asarray(heights, np.float64), 0.0)

    @classmethod
    def from_sdf(cls, sdf, step: float = 0.04, refine: int = 8) -> Ground:
        """The highest point of the rock in each column, from its signed distance volume: a
        scan down in steps of a cell, then ``refine`` bisections of the step it crossed in."""
        lo, hi = sdf.origin.astype(np.float64), sdf.upper.astype(np.float64)
        xs, zs = np.arange(lo[0], hi[0] + step, step), np.arange(lo[2], hi[2] + step, step)
        X, Z = (a.ravel() for a in np.meshgrid(xs, zs, indexing="ij"))
        ys = np.arange(hi[1], min(lo[1], 0.0) - sdf.cell_size, -sdf.cell_size)
        inside = np.stack([sdf.sample(np.c_[X, np.full_like(X, y), Z]) < 0 for y in ys], axis=1)
        first = np.argmax(inside, axis=1)  # the first level down that is inside
        found = inside[np.arange(len(X)), first]
        above, below = ys[np.maximum(first - 1, 0)], ys[first]
        for _ in range(refine):
            mid = 0.5 * (above + below)
            inn = sdf.sample(np.c_[X, mid, Z]) < 0
            below, above = np.where(inn, mid, below), np.where(inn, above, mid)
        return cls(xs, zs, np.where(found, 0.5 * (above + below), 0.0).reshape(len(xs), len(zs)))

    def at(self, x, z) -> np.ndarray:
        """Height at (x, z), bilinear; the floor beyond the grid."""
        x, z = np.asarray(x, np.float64), np.asarray(z, np.float64)
        fx = (x - self.xs[0]) / (self.xs[1] - self.xs[0])
        fz = (z - self.zs[0]) / (self.zs[1] - self.zs[0])
        off = (fx < 0) | (fz < 0) | (fx > len(self.xs) - 1) | (fz > len(self.zs) - 1)
        i = np.clip(np.floor(fx).astype(np.int64), 0, len(self.xs) - 2)
        k = np.clip(np.floor(fz).astype(np.int64), 0, len(self.zs) - 2)
        u, w = np.clip(fx - i, 0, 1), np.clip(fz - k, 0, 1)
        h = self.heights
        y = ((1 - u) * (1 - w) * h[i, k] + u * (1 - w) * h[i + 1, k]
             + (1 - u) * w * h[i, k + 1] + u * w * h[i + 1, k + 1])
        return np.where(off, 0.0, y)

    def ray_depth(self, origin: np.ndarray, dirs: np.ndarray, iterations: int = 24) -> np.ndarray:
        """Ray parameter of each ray origin + s * dirs (unit dirs, looking down) where it meets
        the ground: bisection between the rock's top and the floor (a camera above the rock
        sees no overhang of a height map); inf for a ray that does not look down."""
        down = dirs[..., 1] < -1e-6
        dy = np.where(down, dirs[..., 1], -1.0)
        near = np.maximum((origin[1] - self.heights.max()) / -dy, 0.0)
        far = origin[1] / -dy
        for _ in range(iterations):
            mid = 0.5 * (near + far)
            p = origin + mid[..., None] * dirs
            under = p[..., 1] < self.at(p[..., 0], p[..., 2])
            near, far = np.where(under, near, mid), np.where(under, mid, far)
        return np.where(down, far, np.inf)


@dataclass(frozen=True)
class SyntheticScript:
    people: tuple[Person, ...]
    duration: float
    wall_z: float | None = None  # a vertical wall at z = wall_z, facing +z: the projection surface

    @property
    def touch_plane(self) -> tuple[float, float, float, float] | None:
        return None if self.wall_z is None else (0.0, 0.0, 1.0, self.wall_z)


def script(name: str) -> SyntheticScript:
    """The shipped scripts: 'walk', 'crossing', 'reach' and 'gather' (all of them, the demo), and
    'hill' (people on the rock hill, with its :class:`Ground`)."""
    walk = Person(((0.0, -2.6, 0.3), (4.0, 2.2, 0.3)), height=1.75)
    # Two people whose paths cross in an X; the shorter one reaches the crossing 0.5 s later.
    a = Person(((0.0, -2.0, -1.0), (3.0, 2.0, 1.0)), height=1.8, radius=0.21)
    b = Person(((0.0, -2.2, 1.0), (3.0, 1.8, -1.0)), height=1.6, radius=0.19)
    b = Person(tuple((t + 0.5, x, z) for t, x, z in b.waypoints), b.height, b.radius)
    reacher = Person(
        ((0.0, 0.6, -0.55), (5.0, 0.6, -0.55)), height=1.7, reaches=(Reach(1.0, 3.0, (0.6, 1.0, -1.13)),)
    )
    # On the rock hill (scenes/rock_hill.toml): one climbs from the foot and stands a while
    # below the summit, one walks up to the south flank and stands there to the end, one crosses
    # the east shoulder; the Ground lifts them onto the rock. Each comes in from beyond the
    # ceiling camera's view (x beyond 3.5 m), so the empty hill is what the tracker learns first.
    climber = Person(((0.0, -4.2, -2.4), (7.0, -1.3, -0.9), (14.0, -1.3, -0.9), (20.0, -4.2, -2.4)), 1.7)
    stander = Person(((0.0, 4.2, -2.0), (4.0, 0.9, -1.2), (20.0, 0.9, -1.2)), 1.65, 0.19)
    crosser = Person(((0.0, 4.2, 2.4), (3.0, 4.2, 2.4), (11.0, 2.4, -2.6), (20.0, 4.2, 2.4)), 1.8, 0.21)
    scripts = {
        "hill": SyntheticScript((climber, stander, crosser), 20.0),
        "walk": SyntheticScript((walk,), 4.0),
        "crossing": SyntheticScript((a, b), 4.0),
        "reach": SyntheticScript((reacher,), 4.0, wall_z=-1.2),
        "gather": SyntheticScript(
            (
                Person(((0.0, -2.6, 0.6), (5.0, 2.4, 0.9), (7.0, 2.4, 0.9), (10.0, -2.6, 0.6)), 1.75),
                Person(((0.0, 1.5, 1.5), (10.0, 1.5, 1.5)), 1.6, 0.18),
                Person(((1.0, 2.5, -0.3), (4.0, -1.0, 0.0), (7.0, -1.0, 0.0), (9.5, 2.5, -0.3)), 1.85),
                Person(
                    ((0.0, -0.4, -0.6), (10.0, -0.4, -0.6)),
                    1.65,
                    reaches=(Reach(2.0, 5.0, (-0.3, 0.9, -1.13)), Reach(6.5, 8.5, (-0.6, 1.1, -1.13))),
                ),
            ),
            10.0,
            wall_z=-1.2,
        ),
    }
    if name not in scripts:
        raise ValueError(f"unknown synthetic script {name!r}: expected one of {sorted(scripts)}")
    return scripts[name]


def overhead_camera(
    width: int = 640, height: int = 480, mount_height: float = 5.0, hfov_deg: float = 70.0
) -> DepthCalibration:
    """A depth camera on the ceiling looking straight down, image top towards -z (the wall)."""
    return DepthCalibration.look_at(
        Intrinsics.from_fov(width, height, hfov_deg), (0.0, mount_height, 0.0), (0.0, 0.0, 0.0)
    )


def _capsule_depth(
    origin: np.ndarray, dirs: np.ndarray, a: np.ndarray, b: np.ndarray, r: float
) -> np.ndarray:
    """Ray parameter of the first hit of rays origin + s * dirs (unit dirs) with a capsule, inf if none.

    Quilez's closed form: the infinite cylinder first, then the end cap on the side it missed.
    """
    ba, oa = b - a, origin - a
    baba, baoa, oaoa = ba @ ba, ba @ oa, oa @ oa
    bard, rdoa = dirs @ ba, dirs @ oa
    qa = baba - bard * bard
    qb = baba * rdoa - baoa * bard
    qc = baba * oaoa - baoa * baoa - r * r * baba
    h = qb * qb - qa * qc
    out = np.full(dirs.shape[:-1], np.inf)
    hit = h >= 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (-qb - np.sqrt(np.maximum(h, 0.0))) / qa
    y = baoa + s * bard
    body = hit & (y > 0.0) & (y < baba) & (s > 0)
    out[body] = s[body]
    for end, side in ((a, y <= 0.0), (b, y >= baba)):
        oc = origin - end
        cb = dirs @ oc
        hc = cb * cb - (oc @ oc - r * r)
        cap = hit & ~body & side & (hc > 0.0)
        sc = -cb - np.sqrt(np.maximum(hc, 0.0))
        cap &= sc > 0
        out[cap] = np.minimum(out[cap], sc[cap])
    return out


class SyntheticSource(FrameSource):
    """Depth frames of a :class:`SyntheticScript` seen by ``camera``, at ``fps`` on a fixed clock.

    noise_mm is the depth noise (sigma) at 1 m, growing with the square of depth as a
    structured-light sensor's does; dropout is the share of pixels with no reading (0).
    """

    def __init__(
        self,
        script_name: str | SyntheticScript = "gather",
        camera: DepthCalibration | None = None,
        fps: float = 30.0,
        noise_mm: float = 1.0,
        dropout: float = 0.002,
        seed: int = 0,
        frames: int | None = None,
        loop: bool = True,
        realtime: bool = False,
        ground: Ground | None = None,
    ) -> None:
        self.script = script(script_name) if isinstance(script_name, str) else script_name
        self.ground = ground
        self.calibration = camera or overhead_camera()
        self.fps = fps
        self.noise_mm = noise_mm
        self.dropout = dropout
        self.seed = seed
        self.frames = frames if frames is not None else (None if loop else int(self.script.duration * fps))
        self.loop = loop
        self.realtime = realtime
        self.name = "synthetic"
        cal = self.calibration
        dirs = cal.rays_world()
        self._ray_len = np.linalg.norm(dirs, axis=-1)  # metres along the ray per metre of depth
        self._dirs = dirs / self._ray_len[..., None]
        self._background = self._render_planes()

    def script_time(self, index: int) -> float:
        t = index / self.fps
        return t % self.script.duration if self.loop else t

    def lift(self, person: Person, t: float) -> np.ndarray:
        """How far up the ground is under ``person`` at ``t``: nothing on the floor."""
        if self.ground is None:
            return np.zeros(3)
        p = person.position(t)
        return np.array([0.0, float(self.ground.at(p[0], p[2])), 0.0])

    def truth(self, index: int) -> list[PersonTruth]:
        t = self.script_time(index)
        out = []
        for i, p in enumerate(self.script.people):
            lift, hand = self.lift(p, t), p.hand(t)
            out.append(PersonTruth(i, p.position(t) + lift, p.velocity(t), p.height, p.radius,
                                   None if hand is None else hand + lift))
        return out

    def _render_planes(self) -> np.ndarray:
        """Depth in metres of the empty room: the floor y = 0, the wall if any, the ground if any."""
        cal = self.calibration
        dirs = cal.rays_world()  # un-normalised: depth d reaches t + d * dirs
        o = cal.translation
        planes = [(np.array([0.0, 1.0, 0.0]), 0.0)]
        if self.script.wall_z is not None:
            planes.append((np.array([0.0, 0.0, 1.0]), self.script.wall_z))
        depth = np.full(dirs.shape[:2], np.inf)
        for n, c in planes:
            with np.errstate(divide="ignore"):
                d = (c - n @ o) / (dirs @ n)
            depth = np.where((d > 0) & (dirs @ n < 0), np.minimum(depth, d), depth)
        if self.ground is not None:
            depth = np.minimum(depth, self.ground.ray_depth(o, self._dirs) / self._ray_len)
        return depth

    def render_depth_m(self, index: int) -> np.ndarray:
        """The exact, noise-free depth image in metres (inf where the ray sees nothing)."""
        cal = self.calibration
        depth = self._background.copy()
        hh, ww = depth.shape
        t = self.script_time(index)
        for person in self.script.people:
            lift = self.lift(person, t)
            for a, b, r in person.capsules(t):
                a, b = a + lift, b + lift
                # only the capsule's bounding box on screen is ray cast
                lo, hi = np.minimum(a, b) - r, np.maximum(a, b) + r
                corners = np.array(
                    [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
                )
                uv, z = cal.world_to_pixel(corners)
                if np.any(z <= 0):
                    u0, v0, u1, v1 = 0, 0, ww, hh
                else:
                    u0, v0 = np.clip(np.floor(uv.min(0)).astype(int) - 1, 0, [ww, hh])
                    u1, v1 = np.clip(np.ceil(uv.max(0)).astype(int) + 2, 0, [ww, hh])
                if u1 <= u0 or v1 <= v0:
                    continue
                s = _capsule_depth(cal.translation, self._dirs[v0:v1, u0:u1], a, b, r)
                win = depth[v0:v1, u0:u1]
                np.minimum(win, s / self._ray_len[v0:v1, u0:u1], out=win)
        return depth

    def render(self, index: int) -> np.ndarray:
        """The depth image (H, W) uint16 millimetres, with sensor noise and dropouts."""
        d = self.render_depth_m(index) * 1000.0
        rng = np.random.default_rng((self.seed, index))
        if self.noise_mm > 0:
            d = d + rng.standard_normal(d.shape) * (self.noise_mm * (d / 1000.0) ** 2)
        d[~np.isfinite(d) | (d > 65535)] = 0
        if self.dropout > 0:
            d[rng.random(d.shape) < self.dropout] = 0
        return np.rint(d).astype(np.uint16)

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        i = 0
        while self.frames is None or i < self.frames:
            if self.realtime:
                due = (time.monotonic() - start) * self.fps
                if due >= i + 1:
                    # behind (a busy machine, a slow render): skip to the frame due now, so the
                    # visitors walk on the real clock instead of slowing down with the machine
                    i = int(due)
                    if self.frames is not None and i >= self.frames:
                        return
                else:
                    time.sleep(max(0.0, (i - due) / self.fps))
            yield Frame(timestamp=i / self.fps, depth=self.render(i), index=i)
            i += 1
