"""A synthetic overhead colour video of a crowd, with exact truth, for the colour tracker.

What a colour camera on the ceiling sees of a venue: a textured floor (terrazzo-like speckle and
tile joints, optionally greyscale or washed out), and on it people seen from above: a body
ellipse in the shirt's colour (shoulders across the way they walk), a head disc of hair, and
feet in the trousers' colour that step out in front and behind as they walk. Each person casts a
soft shadow to one side, as a lamp off to the side does: the floor under it is darker by a
factor but keeps its texture, which is what tells a shadow from a dark coat. Sensor noise is
added per frame, seeded by the frame's index, so frame i is the same picture every time.

People walk by waypoints (:class:`~waterrock.tracking.synthetic.Person`, the same scripts as the
depth scenes), and their truth is in scene metres through the same
:class:`~waterrock.tracking.calibrate.FloorHomography` the colour pipeline uses without a
calibration (the image spans ``floor_width`` metres), so a test can compare obstacles with
where the people are. The source is a :class:`FrameSource` (timestamps i / fps) and can write
itself to a video file (MJPG .avi) for the video source.

Everything is drawn with cv2 on whole images (no per-pixel Python): a 320 x 240 frame with a
handful of people takes about a millisecond.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from waterrock.tracking.calibrate import FloorHomography
from waterrock.tracking.frame import Frame
from waterrock.tracking.sources import FrameSource
from waterrock.tracking.synthetic import Person

BGR = tuple[int, int, int]

HEAD_RADIUS = 0.095  # m
BODY_DEPTH = 0.6  # the body ellipse's half-depth (along the walk) as a share of its half-width
FOOT = (0.11, 0.055)  # m: half-length and half-width of a foot (and its trouser leg) seen from above
FOOT_SPREAD = 0.09  # m from the body's axis to each foot
STRIDE = 1.4  # m walked per full gait cycle (two steps)
STEP_REACH = 0.17  # m: how far a foot swings in front of / behind the body's centre at most


@dataclass(frozen=True)
class Visitor:
    """One person of the crowd: where they walk (``person.radius`` is half their shoulder
    width) and the colours seen from above."""

    person: Person
    shirt: BGR = (60, 90, 170)
    hair: BGR = (25, 25, 30)
    trousers: BGR = (45, 40, 35)


@dataclass(frozen=True)
class VisitorTruth:
    index: int
    position: np.ndarray  # (3,) scene metres on the floor, under the head
    velocity: np.ndarray  # (3,) m/s
    visible: bool  # the whole body is inside the image
    in_image: bool  # some of it is


def _heading(person: Person, t: float) -> float:
    """The direction (radians, in the floor's x-z plane) the person faces: that of the segment
    they walk now, else the last one they walked, else the first they will walk."""
    w = np.asarray(person.waypoints, np.float64)
    steps = np.diff(w[:, 1:], axis=0)
    moving = np.flatnonzero(np.hypot(steps[:, 0], steps[:, 1]) > 1e-9)
    if not len(moving):
        return 0.0
    seg = int(np.searchsorted(w[:, 0], t, side="right")) - 1
    before = moving[moving <= seg]
    k = before[-1] if len(before) else moving[0]
    return float(np.arctan2(steps[k, 1], steps[k, 0]))


def _walked(person: Person, t: float) -> float:
    """Metres walked by time t (the gait's phase)."""
    w = np.asarray(person.waypoints, np.float64)
    dist = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(w[:, 1:], axis=0).T))])
    return float(np.interp(t, w[:, 0], dist))


class CrowdSource(FrameSource):
    """Overhead colour frames (BGR uint8) of ``visitors`` at ``fps`` for ``duration`` seconds.

    floor        the floor's mean colour (BGR)
    texture      the floor speckle's standard deviation, grey levels (0: a flat floor)
    tiles        metres between tile joints (0: none)
    saturation   1: colours as given; 0: every colour is grey (a washed-out picture)
    greyscale    a monochrome camera: one grey image (and one noise) in all three channels
    shadow       (dx, dz) metres from a person to the far end of their shadow, or None
    shadow_darkness  the share of light the shadow takes away at its core (0.45: 55 % remain)
    noise        sensor noise sigma, grey levels
    """

    def __init__(
        self,
        visitors: tuple[Visitor, ...] | list[Visitor],
        duration: float,
        *,
        width: int = 320,
        height: int = 240,
        fps: float = 15.0,
        floor_width: float = 4.0,
        floor: BGR = (140, 150, 160),
        texture: float = 18.0,
        tiles: float = 0.6,
        saturation: float = 1.0,
        greyscale: bool = False,
        shadow: tuple[float, float] | None = (0.45, 0.25),
        shadow_darkness: float = 0.45,
        noise: float = 2.0,
        seed: int = 0,
    ) -> None:
        self.visitors = tuple(visitors)
        self.duration = duration
        self.width, self.height, self.fps = width, height, fps
        self.frames = int(round(duration * fps))
        self.saturation, self.greyscale = saturation, greyscale
        self.shadow, self.shadow_darkness = shadow, shadow_darkness
        self.noise, self.seed = noise, seed
        self.calibration = FloorHomography.from_image_size(width, height, floor_width)
        self.ppm = width / floor_width  # pixels per metre (the homography is a plain scaling)
        self.name = "crowd"
        self._floor = self._make_floor(floor, texture, tiles)
        self._floor_u8 = np.rint(self._floor).astype(np.uint8)

    # --- geometry -----------------------------------------------------------------------------

    def _px(self, x: float, z: float) -> tuple[float, float]:
        (u, v), = self.calibration.world_to_pixel([[x, 0.0, z]])
        return float(u), float(v)

    def truth(self, index: int) -> list[VisitorTruth]:
        t = index / self.fps
        out = []
        for k, vis in enumerate(self.visitors):
            p = vis.person.position(t)
            u, v = self._px(p[0], p[2])
            m = (vis.person.radius + 0.1) * self.ppm  # the feet reach past the shoulders
            inside = m <= u <= self.width - m and m <= v <= self.height - m
            seen = -m < u < self.width + m and -m < v < self.height + m
            out.append(VisitorTruth(k, p, vis.person.velocity(t), inside, seen))
        return out

    # --- the picture --------------------------------------------------------------------------

    def _make_floor(self, colour: BGR, texture: float, tiles: float) -> np.ndarray:
        """The empty floor, float32 BGR: fine speckle (what the shadow test's patches see), a
        faint large-scale mottling, and darker tile joints."""
        h, w = self.height, self.width
        rng = np.random.default_rng((self.seed, 7919))
        grey = np.zeros((h, w), np.float32)
        if texture > 0:
            fine = cv2.GaussianBlur(rng.standard_normal((h, w), dtype=np.float32), (0, 0), 1.0)
            coarse = cv2.GaussianBlur(rng.standard_normal((h, w), dtype=np.float32), (0, 0), 8.0)
            grey += fine * np.float32(texture / max(float(fine.std()), 1e-6))
            grey += coarse * np.float32(0.4 * texture / max(float(coarse.std()), 1e-6))
        if tiles > 0:
            step = tiles * self.ppm
            joints = np.zeros((h, w), np.uint8)
            for u in np.arange(step / 2, w, step):
                cv2.line(joints, (int(u), 0), (int(u), h - 1), 255, 1)
            for v in np.arange(step / 2, h, step):
                cv2.line(joints, (0, int(v)), (w - 1, int(v)), 255, 1)
            grey -= joints.astype(np.float32) * np.float32(30 / 255)
        return np.clip(np.asarray(colour, np.float32) + grey[..., None], 0, 255).astype(np.float32)

    def _shadow_mask(self, t: float) -> np.ndarray | None:
        """Where the shadows fall, 0..1 float32, soft-edged; None if nobody casts one."""
        if self.shadow is None:
            return None
        mask = np.zeros((self.height, self.width), np.uint8)
        drawn = False
        dx, dz = self.shadow
        for vis in self.visitors:
            p, r = vis.person.position(t), vis.person.radius
            angle = np.degrees(_heading(vis.person, t))
            # the body swept from the feet (under it) to the far end: a lamp off to the side
            for s in np.linspace(0.0, 1.0, 6):
                u, v = self._px(p[0] + s * dx, p[2] + s * dz)
                if -self.width < u < 2 * self.width and -self.height < v < 2 * self.height:
                    axes = (max(1, int(BODY_DEPTH * r * self.ppm)), max(1, int(r * self.ppm)))
                    cv2.ellipse(mask, (int(u), int(v)), axes, angle, 0, 360, 255, -1, cv2.LINE_AA)
                    drawn = True
        if not drawn or not mask.any():
            return None
        return cv2.GaussianBlur(mask.astype(np.float32) * np.float32(1 / 255), (0, 0), 0.03 * self.ppm)

    def _draw_person(self, img: np.ndarray, vis: Visitor, t: float) -> None:
        person, ppm = vis.person, self.ppm
        p = person.position(t)
        heading = _heading(person, t)
        fwd = np.array([np.cos(heading), np.sin(heading)])
        side = np.array([-fwd[1], fwd[0]])
        angle = np.degrees(heading)
        walking = float(np.hypot(*person.velocity(t)[[0, 2]])) > 1e-6
        swing = STEP_REACH * np.sin(2 * np.pi * _walked(person, t) / STRIDE) if walking else 0.0
        centre = p[[0, 2]]

        def px(xz: np.ndarray) -> tuple[int, int]:
            u, v = self._px(xz[0], xz[1])
            return int(round(u)), int(round(v))

        # feet first (the body hides what is under it), one forward while the other is back;
        # standing, both toes peep out in front
        for sgn in (1, -1):
            reach = sgn * swing if walking else 0.1
            foot = centre + side * (sgn * FOOT_SPREAD) + fwd * reach
            axes = (max(1, int(FOOT[0] * ppm)), max(1, int(FOOT[1] * ppm)))
            cv2.ellipse(img, px(foot), axes, angle, 0, 360, vis.trousers, -1, cv2.LINE_AA)
        axes = (max(1, int(BODY_DEPTH * person.radius * ppm)), max(1, int(person.radius * ppm)))
        cv2.ellipse(img, px(centre), axes, angle, 0, 360, vis.shirt, -1, cv2.LINE_AA)
        cv2.circle(img, px(centre + fwd * 0.02), max(1, int(HEAD_RADIUS * ppm)), vis.hair, -1, cv2.LINE_AA)

    def _finish(self, img: np.ndarray, index: int, stream: int) -> np.ndarray:
        """Saturation, a monochrome sensor, and the frame's noise: uint8 BGR. The noise comes from
        OpenCV's generator seeded by (seed, index, stream), 4x faster than numpy's normal draws."""
        if self.greyscale:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        elif self.saturation != 1.0:
            luma = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
            img = cv2.addWeighted(img, self.saturation, luma, 1.0 - self.saturation, 0.0)
        if self.noise > 0:
            cv2.setRNGSeed(int(np.random.SeedSequence((self.seed, index, stream)).generate_state(1)[0] >> 1))
            noise = np.empty(img.shape, np.int16)
            cv2.randn(noise, 0.0, float(self.noise))
            img = cv2.add(img, noise, dtype=cv2.CV_8U)
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if self.greyscale else img

    def render(self, index: int) -> np.ndarray:
        """Frame ``index``: (H, W, 3) uint8 BGR."""
        t = index / self.fps
        shade = self._shadow_mask(t)
        if shade is None:
            img = self._floor_u8.copy()
        else:  # the floor times the light left: darker, its texture kept
            light = cv2.addWeighted(shade, -self.shadow_darkness, shade, 0.0, 1.0)
            img = cv2.multiply(self._floor, cv2.merge([light, light, light]), dtype=cv2.CV_8U)
        for vis in self.visitors:
            self._draw_person(img, vis, t)
        return self._finish(img, index, 0)

    def empty(self, index: int = 0) -> np.ndarray:
        """The empty floor as frame ``index`` would see it (its own noise): the venue at opening
        time, to learn a saved background from."""
        return self._finish(self._floor_u8.copy(), index, 1)

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.frames):
            yield Frame(timestamp=i / self.fps, color=self.render(i), index=i)

    def write_video(self, path: str | Path) -> Path:
        """All frames to an MJPG .avi (what the video source reads back)."""
        path = Path(path)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), self.fps, (self.width, self.height))
        if not writer.isOpened():
            raise OSError(f"{path}: OpenCV could not open a video writer (MJPG)")
        try:
            for i in range(self.frames):
                writer.write(self.render(i))
        finally:
            writer.release()
        return path
