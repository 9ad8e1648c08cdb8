"""Frame -> ObstacleSnapshot: segmentation, blobs, tracks and the shapes they become.

A standing visitor becomes a vertical capsule from the floor or rock under them up to their
height, as wide as their footprint; a hand in the touch band becomes a sphere. Both carry the
track's velocity, so the water is pushed the way the visitor moves.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np

from waterrock import files
from waterrock.snapshots import ObstacleSnapshot
from waterrock.tracking.blobs import Blob, find_blobs
from waterrock.tracking.calibrate import (
    Calibration,
    DepthCalibration,
    FloorHomography,
    Intrinsics,
    load_calibration,
)
from waterrock.tracking.frame import CorruptFrame, Frame, check_frame
from waterrock.tracking.segment import ColorSegmenter, DepthBackground, DepthSegmenter
from waterrock.tracking.settings import TrackingSettings
from waterrock.tracking.track import Track, Tracker

log = logging.getLogger(__name__)

HEAD_BAND = 0.06  # m: the points this close to a blob's top are the crown of the head, above the body's axis
HAND_IDS_FROM = 1_000_000  # hands and bodies never share an id
# frames in a row of a new image size before the model is rebuilt at it: a camera replaced by one of
# another resolution keeps its size, while one odd frame must not cost a learned background
NEW_SIZE_FRAMES = 3


def _tracker(s: TrackingSettings, ids) -> Tracker:
    return Tracker(s.gate, s.gate_growth, s.confirm_frames, s.drop_frames, s.alpha, s.beta, ids)


class Pipeline:
    """What the runner drives: ``process(frame)`` returns the obstacles seen in it."""

    def process(self, frame: Frame) -> ObstacleSnapshot:
        raise NotImplementedError

    def foreground(self) -> np.ndarray | None:
        """The last frame's foreground mask (H, W) bool, for the tracker view; None before one."""
        return None


def _crown_centre(crown: np.ndarray) -> np.ndarray:
    """The centre under the crown of the head: a least-squares sphere through its points.

    Not their mean: the side of the head facing the camera covers more pixels than the far
    side, which would pull a mean towards the camera by a couple of centimetres.
    """
    mean = crown.mean(0)
    if len(crown) < 10:
        return mean
    q = (crown - mean).astype(np.float64)
    # |p - c|^2 = r^2  <=>  2 p.c + (r^2 - |c|^2) = |p|^2: linear in (c, k)
    a = np.column_stack([2.0 * q, np.ones(len(q))])
    sol, *_ = np.linalg.lstsq(a, np.einsum("ij,ij->i", q, q), rcond=None)
    centre = mean + sol[:3]
    if not np.all(np.isfinite(centre)) or np.hypot(*(centre - mean)[[0, 2]]) > 0.15:
        return mean  # a flat or odd crown (a hat, a raised arm): the mean is the safer guess
    return centre


def _capsules(
    ts: float, tracks: list[Track], floor_default: float, height_default: float
) -> ObstacleSnapshot:
    if not tracks:
        return ObstacleSnapshot.empty(ts)
    p = np.array([t.position for t in tracks])
    r = np.array([t.attrs["radius"] for t in tracks])
    surface = np.array([t.attrs.get("surface", floor_default) for t in tracks])
    top = np.array([t.attrs.get("top", s + height_default) for t, s in zip(tracks, surface, strict=True)])
    a = np.column_stack([p[:, 0], surface + r, p[:, 2]])
    b = np.column_stack([p[:, 0], np.maximum(top - r, surface + r), p[:, 2]])
    v = np.array([t.velocity for t in tracks])
    return ObstacleSnapshot.capsules(a, b, r, v, [t.id for t in tracks], ts)


def _wxh(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]}"


class _NewSize:
    """Counts the frames in a row of one image size other than the model's."""

    def __init__(self) -> None:
        self.shape: tuple[int, ...] | None = None
        self.frames = 0

    def holds(self, shape: tuple[int, ...]) -> bool:
        """One more frame of ``shape``; True (and the count starts over) once NEW_SIZE_FRAMES had it."""
        if shape != self.shape:
            self.shape, self.frames = shape, 0
        self.frames += 1
        if self.frames < NEW_SIZE_FRAMES:
            return False
        self.reset()
        return True

    def reset(self) -> None:
        self.shape, self.frames = None, 0


def _saved_background(path: Path) -> DepthBackground | None:
    """The background saved at ``path``, or None (learn it afresh) when there is none or it is
    torn: raising here failed every reopen of the source, and the tracker never ran again."""
    if not path.exists():
        return None
    try:
        return DepthBackground.load(path)
    except FileNotFoundError:  # gone since
        return None
    except ValueError as err:  # one line, naming the file
        log.warning("%s; learning the background afresh", err)
        return None


class DepthPipeline(Pipeline):
    """Depth frames: background, height band, touch band, capsules and hand spheres."""

    def __init__(
        self,
        settings: TrackingSettings,
        calibration: Calibration | None = None,
        background: DepthBackground | None = None,
    ) -> None:
        if calibration is not None and not isinstance(calibration, DepthCalibration):
            raise ValueError(
                "depth tracking needs a depth calibration (intrinsics and pose), not a homography"
            )
        self.s = settings
        self.calibration = calibration
        self._given_calibration = calibration  # what each background size's calibration is scaled from
        self._new_size = _NewSize()
        if background is None and settings.background_file is not None:
            background = _saved_background(settings.background_file)
        self.background = background
        self._learning: list[np.ndarray] = []
        self.segmenter: DepthSegmenter | None = None
        ids = itertools.count(1)
        self.people = _tracker(settings, ids)
        self.hands = _tracker(settings, itertools.count(HAND_IDS_FROM))
        self.last_masks: tuple[np.ndarray, np.ndarray | None] | None = None  # for an overlay
        if background is not None:
            self._build(background)

    @property
    def ready(self) -> bool:
        return self.segmenter is not None

    def _build(self, bg: DepthBackground) -> None:
        h, w = bg.shape
        cal = self._given_calibration
        if cal is None:
            # no calibration: assume a camera straight above the floor at the median distance
            floor_mm = float(np.median(bg.depth[bg.depth > 0])) if np.any(bg.depth > 0) else 3000.0
            log.warning(
                "depth tracking without a calibration: assuming a camera %.2f m straight above the floor",
                floor_mm / 1000,
            )
            cal = DepthCalibration.look_at(
                Intrinsics.from_fov(w, h, 70.0), (0, floor_mm / 1000, 0), (0, 0, 0)
            )
        elif (cal.intrinsics.width, cal.intrinsics.height) != (w, h):
            cal = DepthCalibration(cal.intrinsics.scaled(w, h), cal.rotation, cal.translation)
        self.calibration = cal
        s = self.s
        self.segmenter = DepthSegmenter(
            bg,
            cal,
            noise_k=s.noise_k,
            depth_step_fraction=s.depth_step_fraction,
            min_depth_step_mm=s.min_depth_step_mm,
            min_height=s.min_height,
            max_height=s.max_height,
            touch_plane=s.touch_plane,
            touch_band=s.touch_band,
            open_px=s.open_px,
            close_px=s.close_px,
        )
        self._rays = cal.rays_world().astype(np.float32)
        self._origin = cal.translation.astype(np.float32)
        self._bg_y = (cal.translation[1] + bg.depth / 1000.0 * self._rays[..., 1]).astype(np.float32)
        k = cal.intrinsics
        self._px_area = 1.0 / (k.fx * k.fy)  # m^2 per pixel at 1 m depth
        # the fewest pixels a blob of min area has, seen from as far as the background reaches
        far = float(bg.depth.max()) / 1000.0 or 10.0
        self._min_px = max(4, int(min(s.min_blob_area, s.min_hand_area) / (self._px_area * far * far)))

    def learn_background(self, depth: np.ndarray) -> bool:
        """Add one empty-scene frame; True once the model is built. A frame of another size than
        the ones before starts the learning over (a driver's odd first frame, a camera swapped)."""
        if self._learning and depth.shape != self._learning[0].shape:
            log.info("depth frames went from %s to %s while learning the background: learning starts over",
                     _wxh(self._learning[0].shape), _wxh(depth.shape))
            self._learning = []
        self._learning.append(depth.copy())
        if len(self._learning) < self.s.background_frames:
            return False
        bg = DepthBackground.learn(self._learning)
        self._learning = []
        if self.s.background_file is not None:
            try:
                bg.save(self.s.background_file)
            except OSError as err:  # a full disk, a folder gone: the model in memory still serves
                log.warning("%s: background not saved (%s); using it unsaved", self.s.background_file,
                            files.describe_error(err))
        self.background = bg
        self._build(bg)
        return True

    def _points(self, depth: np.ndarray, blob: Blob) -> tuple[np.ndarray, np.ndarray]:
        """Scene points (K, 3) of a blob's valid pixels, and their depths in metres."""
        d = blob.crop(depth)[blob.mask].astype(np.float32) * np.float32(0.001)
        rays = blob.crop(self._rays)[blob.mask]
        ok = d > 0
        d, rays = d[ok], rays[ok]
        return self._origin + d[:, None] * rays, d

    def _measure_people(self, depth: np.ndarray, body: np.ndarray) -> tuple[np.ndarray, list[dict]]:
        s = self.s
        points, attrs = [], []
        for blob in find_blobs(body, self._min_px):
            pts, d = self._points(depth, blob)
            if len(pts) < 4:
                continue
            area = float(np.sum(d * d)) * self._px_area
            if not s.min_blob_area <= area <= s.max_blob_area:
                continue
            y = pts[:, 1]
            top = float(np.percentile(y, 99.5))  # not the max: one noisy pixel would make them taller
            crown = _crown_centre(pts[y >= top - HEAD_BAND])
            surface = float(np.median(blob.crop(self._bg_y)[blob.mask]))
            radius = float(np.clip(np.sqrt(area / np.pi), s.min_radius, s.max_radius))
            points.append([crown[0], top, crown[2]])
            attrs.append(
                {"radius": radius, "top": top, "surface": surface, "area": area, "nearest": blob.nearest_mm}
            )
        return np.array(points).reshape(-1, 3), attrs

    def _measure_hands(self, depth: np.ndarray, touch: np.ndarray) -> np.ndarray:
        points = []
        x, y, w, h = self.segmenter.touch_rect
        for blob in find_blobs(touch[y : y + h, x : x + w], self._min_px, origin=(x, y)):
            pts, d = self._points(depth, blob)
            if len(pts) and float(np.sum(d * d)) * self._px_area >= self.s.min_hand_area:
                points.append(pts.mean(0))
        return np.array(points).reshape(-1, 3)

    def foreground(self) -> np.ndarray | None:
        if self.last_masks is None:
            return None
        body, touch = self.last_masks
        return (body > 0) if touch is None else (body > 0) | (touch > 0)

    def _relearn_at(self, frame: Frame) -> None:
        """Take the size of ``frame`` if it has held (a camera of another resolution, a background
        saved by another camera), relearning the background at it; until then skip the frame."""
        depth, bg = frame.depth, self.background
        if not self._new_size.holds(depth.shape):
            raise CorruptFrame(f"frame {frame.index}: depth is {_wxh(depth.shape)}, the background {_wxh(bg.shape)}")
        log.warning("depth frames are now %s, the background is %s: learning the background afresh",
                    _wxh(depth.shape), _wxh(bg.shape))
        self.background, self.segmenter, self.last_masks = None, None, None
        self._learning = []

    def process(self, frame: Frame) -> ObstacleSnapshot:
        if frame.depth is None:
            raise CorruptFrame(f"frame {frame.index}: no depth image for depth tracking")
        check_frame(frame)
        depth = frame.depth
        if self.background is not None and depth.shape != self.background.shape:
            self._relearn_at(frame)
        else:
            self._new_size.reset()
        if self.segmenter is None:
            self.learn_background(depth)
            return ObstacleSnapshot.empty(frame.timestamp)
        body, touch = self.segmenter.segment(depth)
        self.last_masks = (body, touch)
        ts = frame.timestamp
        pts, attrs = self._measure_people(depth, body)
        people = self.people.update(ts, pts, attrs)
        snap = _capsules(ts, people, 0.0, self.s.person_height)
        if touch is None:
            return snap
        hands = self.hands.update(ts, self._measure_hands(depth, touch))
        if not hands:
            return snap
        hand_snap = ObstacleSnapshot.spheres(
            [h.position for h in hands],
            self.s.hand_radius,
            [h.velocity for h in hands],
            [h.id for h in hands],
            ts,
        )
        return ObstacleSnapshot.concat([snap, hand_snap], ts)


class ColorPipeline(Pipeline):
    """Colour frames: MOG2 foreground, blobs mapped to the floor by a homography."""

    def __init__(self, settings: TrackingSettings, calibration: Calibration | None = None) -> None:
        if calibration is not None and not isinstance(calibration, FloorHomography):
            raise ValueError("colour tracking needs a floor homography, not a depth calibration")
        self.s = settings
        self.calibration = calibration
        self._given_calibration = calibration
        self.segmenter = self._segmenter()
        self.people = _tracker(settings, itertools.count(1))
        self.shape: tuple[int, int] | None = None
        self._new_size = _NewSize()
        self.last_mask: np.ndarray | None = None

    def _segmenter(self) -> ColorSegmenter:
        s = self.s
        return ColorSegmenter(s.color_history, s.color_var_threshold, s.open_px, s.close_px)

    def foreground(self) -> np.ndarray | None:
        return None if self.last_mask is None else self.last_mask > 0

    def process(self, frame: Frame) -> ObstacleSnapshot:
        if frame.color is None:
            raise CorruptFrame(f"frame {frame.index}: no colour image for colour tracking")
        check_frame(Frame(frame.timestamp, frame.color, None, frame.index))
        h, w = frame.color.shape[:2]
        if self.shape is not None and (h, w) != self.shape:
            # a size that holds is a camera of another resolution: a new background model at it
            if not self._new_size.holds((h, w)):
                raise CorruptFrame(f"frame {frame.index}: colour is {w}x{h}, expected {_wxh(self.shape)}")
            log.warning("colour frames are now %dx%d, were %s: learning the background afresh", w, h,
                        _wxh(self.shape))
            self.segmenter, self.shape = self._segmenter(), None
        else:
            self._new_size.reset()
        if self.shape is None:
            self.shape = (h, w)
            self.calibration = _floor_homography(self._given_calibration, w, h, self.s.floor_width)
        mask = self.segmenter.segment(frame.color)
        self.last_mask = mask
        s, cal = self.s, self.calibration
        points, attrs = [], []
        for blob in find_blobs(mask, 20):
            world_contour = cal.pixel_to_world(blob.contour.astype(np.float64))
            xz = world_contour[:, [0, 2]].astype(np.float32)
            area = abs(float(np.sum(xz[:, 0] * np.roll(xz[:, 1], -1) - np.roll(xz[:, 0], -1) * xz[:, 1]))) / 2
            if not s.min_blob_area <= area <= s.max_blob_area:
                continue
            points.append(cal.pixel_to_world(blob.centroid)[0])
            attrs.append(
                {"radius": float(np.clip(np.sqrt(area / np.pi), s.min_radius, s.max_radius)), "area": area}
            )
        tracks = self.people.update(frame.timestamp, np.array(points).reshape(-1, 3), attrs)
        return _capsules(frame.timestamp, tracks, cal.floor_y, s.person_height)


def _floor_homography(given: FloorHomography | None, w: int, h: int, floor_width: float) -> FloorHomography:
    """The homography for images of w x h: ``given`` scaled to them when its own size is known
    (as it is at the scene's camera's size), as is when not, or the image spanning floor_width."""
    if given is None:
        return FloorHomography.from_image_size(w, h, floor_width)
    if not (given.width and given.height) or (given.width, given.height) == (w, h):
        return given
    sx, sy = given.width / w, given.height / h  # pixel centres: u_old + 0.5 = (u_new + 0.5) * sx
    to_given = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    return FloorHomography(given.matrix @ to_given, given.floor_y, w, h)


def _saved_calibration(path: Path) -> Calibration | None:
    """The calibration saved at ``path``, or None (the source's own, or none) when it is missing
    or torn: raising here failed every reopen of the source, and the tracker never ran again."""
    try:
        return load_calibration(path)
    except (FileNotFoundError, ValueError) as err:  # one line, naming the file
        log.warning("%s; tracking without it", err)
        return None


def pipeline_for(
    settings: TrackingSettings, frame: Frame, source_calibration: Calibration | None
) -> Pipeline:
    """The pipeline for a source, chosen by its first frame: depth when it has depth."""
    cal = _saved_calibration(settings.calibration) if settings.calibration is not None else None
    if cal is None:
        cal = source_calibration
    mode = settings.segmentation
    if mode == "auto":
        mode = "depth" if frame.depth is not None else "color"
    if mode == "depth":
        return DepthPipeline(settings, cal if isinstance(cal, DepthCalibration) else None)
    return ColorPipeline(settings, cal if isinstance(cal, FloorHomography) else None)
