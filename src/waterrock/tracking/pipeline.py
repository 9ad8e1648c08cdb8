"""Frame -> ObstacleSnapshot: segmentation, blobs, tracks and the shapes they become.

A standing visitor becomes a vertical capsule from the floor or rock under them up to their
height, as wide as their footprint; a hand in the touch band becomes a sphere. Both carry the
track's velocity, so the water is pushed the way the visitor moves.
"""

from __future__ import annotations

import collections
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
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
from waterrock.tracking.segment import (
    ColorBackground,
    ColorSegmenter,
    DepthBackground,
    DepthSegmenter,
    OtherSensorsBackground,
)
from waterrock.tracking.settings import TrackingSettings
from waterrock.tracking.track import Track, Tracker

log = logging.getLogger(__name__)

HEAD_BAND = 0.06  # m: the points this close to a blob's top are the crown of the head, above the body's axis
HAND_IDS_FROM = 1_000_000  # hands and bodies never share an id
# frames in a row of a new image size before the model is rebuilt at it: a camera replaced by one of
# another resolution keeps its size, while one odd frame must not cost a learned background
NEW_SIZE_FRAMES = 3
FRAGMENT_SHARE = 0.1  # colour blobs under this share of min_blob_area are specks, not parts of a person
GHOST_FRAMES = 3  # frames in a row a colour track must look like a ghost before it is forgotten
GHOST_MAX_SPEED = 0.3  # m/s: a colour track this fast is no ghost (a slow stroll is 0.8)
SHADED_SHARE = 0.5  # pieces with no person among them, of the floor's colour shaded over more of them, are no one
LIMB_WIDTH = 0.12  # m: a foot, an arm, seen from above, is narrower; a body is wider (about 0.25 by 0.4)
SPLIT_MARGIN = 0.05  # m: a track expected this near a blob's outline has walked into it
SPLIT_ITERATIONS = 3  # of k-means when a blob is shared by people whose tracks walked into it
# fragment_areas a lone person may cover (0.30 m^2 at 0.06: a coat, a bag; 0.08 to 0.13 in the crowd). At 3
# (0.18 m^2) a 0.5 m wide walker was split in two, and the two tracks then kept each other alive
ONE_PERSON_MAX = 5.0


def _tracker(s: TrackingSettings, ids, max_speed: float | None = None) -> Tracker:
    """A tracker with the scene's settings; ``max_speed`` (m/s) is a person's unless given (a hand's)."""
    return Tracker(
        s.gate, s.gate_growth, s.confirm_frames, s.drop_frames, s.alpha, s.beta, ids,
        max_speed=s.max_person_speed if max_speed is None else max_speed, coast_time=s.coast_time,
    )


class Pipeline:
    """What the runner drives: ``process(frame)`` returns the obstacles seen in it."""

    def process(self, frame: Frame) -> ObstacleSnapshot:
        raise NotImplementedError

    def foreground(self) -> np.ndarray | None:
        """The last frame's foreground mask (H, W) bool, for the tracker view; None before one."""
        return None


def _quantile(x: np.ndarray, q: float) -> float:
    """np.percentile(x, 100 q) (linear between the two nearest ranks) by one partial sort."""
    pos = q * (len(x) - 1)
    k = int(pos)
    if k + 1 >= len(x):
        return float(np.partition(x, k)[k])
    part = np.partition(x, (k, k + 1))
    return float(part[k] + (pos - k) * (part[k + 1] - part[k]))


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
    # the normal equations (4 x 4): the points are centred, so they are well conditioned, and
    # solving them took a fifth of lstsq's SVD of the N x 4 system
    try:
        sol = np.linalg.solve(a.T @ a, a.T @ np.einsum("ij,ij->i", q, q))
    except np.linalg.LinAlgError:  # all on one plane or line: no sphere
        return mean
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
    w = np.array([t.weight for t in tracks], np.float32)  # a coasting track shrinks away (track.py)
    return ObstacleSnapshot.capsules(a, b, r, v, [t.id for t in tracks], ts, w)


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


def _saved_background(path: Path, load) -> tuple[DepthBackground | ColorBackground | None, str]:
    """The background ``load`` reads from ``path`` (or None: learn it afresh), and what the file
    held: 'loaded', 'none', 'torn' or 'other' (the other sensor's kind). A torn file or the other
    kind is named in one warning: raising here failed every reopen of the source, and the tracker
    never ran again."""
    if not path.exists():
        return None, "none"
    try:
        return load(path), "loaded"
    except FileNotFoundError:  # gone since
        return None, "none"
    except ValueError as err:  # one line, naming the file
        log.warning("%s; learning the background afresh", err)
        return None, "other" if isinstance(err, OtherSensorsBackground) else "torn"


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
            background = _saved_background(settings.background_file, DepthBackground.load)[0]
        self.background = background
        self._learning: list[np.ndarray] = []
        self.segmenter: DepthSegmenter | None = None
        ids = itertools.count(1)
        self.people = _tracker(settings, ids)
        self.hands = _tracker(settings, itertools.count(HAND_IDS_FROM), settings.max_hand_speed)
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
        self._rays_y = np.ascontiguousarray(self._rays[..., 1])
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
            # heights of every valid pixel, but whole scene points only for the crown's: a body
            # has thousands of pixels, its crown a few hundred
            rows, cols = np.nonzero(blob.mask)
            d = blob.crop(depth)[rows, cols].astype(np.float32) * np.float32(0.001)
            ok = d > 0
            if np.count_nonzero(ok) < 4:
                continue
            rows, cols, d = rows[ok], cols[ok], d[ok]
            area = float(np.dot(d, d)) * self._px_area
            if not s.min_blob_area <= area <= s.max_blob_area:
                continue
            y = self._origin[1] + d * blob.crop(self._rays_y)[rows, cols]
            top = _quantile(y, 0.995)  # not the max: one noisy pixel would make them taller
            head = y >= top - HEAD_BAND
            crown = _crown_centre(self._origin + d[head, None] * blob.crop(self._rays)[rows[head], cols[head]])
            surface = self._surface_under(crown, float(np.median(blob.crop(self._bg_y)[blob.mask])))
            radius = float(np.clip(np.sqrt(area / np.pi), s.min_radius, s.max_radius))
            points.append([crown[0], top, crown[2]])
            attrs.append(
                {"radius": radius, "top": top, "surface": surface, "area": area, "nearest": blob.nearest_mm}
            )
        return np.array(points).reshape(-1, 3), attrs

    def _surface_under(self, crown: np.ndarray, guess: float, steps: int = 4) -> float:
        """The height of the empty floor or rock straight under a person's crown. The background
        behind their silhouette (``guess``, its median) lies beyond them along the camera's rays:
        on a hill, downhill of their feet (0.5 m too low on the rock hill's flank). So look up
        the background where the point at the guessed height under the crown projects, and
        repeat, as parallax mapping walks a height map: a few steps settle it for a camera above.
        Each look is the median of a 7 x 7 patch: one pixel's noise is 25 mm at 5 m."""
        h, w = self._bg_y.shape
        for _ in range(steps):
            uv, z = self.calibration.world_to_pixel([[crown[0], guess, crown[2]]])
            u, v = int(round(uv[0, 0])), int(round(uv[0, 1]))
            if z[0] <= 0 or not (0 <= u < w and 0 <= v < h):
                break  # off the picture: keep the last height
            patch = (slice(max(v - 3, 0), v + 4), slice(max(u - 3, 0), u + 4))
            seen = self.background.depth[patch] > 0
            if not seen.any():
                break  # no reading there
            guess = float(np.median(self._bg_y[patch][seen]))
        return guess

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
            np.array([h.weight for h in hands], np.float32),
        )
        return ObstacleSnapshot.concat([snap, hand_snap], ts)


class ColorPipeline(Pipeline):
    """Colour frames: our own background model, blobs mapped to the floor by a homography.

    Nothing is published while the background is learned (the first ``background_seconds``),
    unless a colour background was saved at ``background_file``. The blobs matched to confirmed
    tracks are handed back to the segmenter as ``hold`` (their outlines filled, widened by a
    margin), so that a visitor who stops is never learned into the floor, unless their outline
    shows in the background and not in the frame: then they are a ghost, and are forgotten.
    A blob smaller than ``fragment_area`` is a piece of a person (a light shirt that the floor's
    colour cut out of a person leaves hair and legs) and joins the nearest blob whose floor outline
    comes within ``merge_distance``, as long as the whole fits within ``max_radius``; two larger
    blobs are two people, however close. A person is where their body's core is (see
    _body_pixel), and one blob that two tracks walked into, or too large for one person, is shared
    among them (see _split).
    """

    def __init__(
        self,
        settings: TrackingSettings,
        calibration: Calibration | None = None,
        background: ColorBackground | None = None,
    ) -> None:
        if calibration is not None and not isinstance(calibration, FloorHomography):
            raise ValueError("colour tracking needs a floor homography, not a depth calibration")
        self.s = settings
        self.calibration = calibration
        self._given_calibration = calibration
        self.shape: tuple[int, int] | None = None
        # a learned background is saved where the scene names a file that holds none, or a torn
        # one; over a colour background only when the camera's size changed (as depth does);
        # never over a depth background (the venue's other sensor's)
        kind = "given" if background is not None else "none"
        if background is None and settings.background_file is not None:
            background, kind = _saved_background(settings.background_file, ColorBackground.load)
        self._save = settings.background_file is not None and kind in ("none", "torn")
        self._resave = settings.background_file is not None and kind != "other"
        self.segmenter = self._segmenter(background)
        self.people = _tracker(settings, itertools.count(1))
        self._new_size = _NewSize()
        self.last_mask: np.ndarray | None = None
        self._hold: np.ndarray | None = None  # this frame's tracks, held in the next one
        self._forget: np.ndarray | None = None  # ghosts found in this frame, forgotten in the next
        self._ghost_votes: dict[int, int] = {}  # frames in a row each track looked like a ghost
        if background is not None:
            self._take_size(*background.shape)

    def _segmenter(self, background: ColorBackground | None = None) -> ColorSegmenter:
        s = self.s
        return ColorSegmenter(
            background,
            var_threshold=s.color_var_threshold,
            noise=s.color_noise,
            background_seconds=s.background_seconds,
            drift_seconds=s.drift_seconds,
            absorb_seconds=s.absorb_seconds,
            shadow_ratio=s.shadow_ratio,
            shadow_chroma=s.shadow_chroma,
            shadow_ncc=s.shadow_ncc,
            open_px=s.open_px,
            close_px=s.close_px,
        )

    @property
    def ready(self) -> bool:
        """Whether the background is there (learned or loaded): until then nothing is published."""
        return not self.segmenter.learning

    def _take_size(self, h: int, w: int) -> None:
        self.shape = (h, w)
        self.calibration = _floor_homography(self._given_calibration, w, h, self.s.floor_width)
        # hold a margin around each tracked outline: its blurred rim must not creep into the floor
        self._margin = max(2, round(w / 160))

    def foreground(self) -> np.ndarray | None:
        return None if self.last_mask is None else self.last_mask > 0

    def _learned(self) -> None:
        """Save the background just learned, if it may be (see __init__)."""
        path = self.s.background_file
        if path is None or not self._save:
            return
        try:
            self.segmenter.background.save(path)
            log.info("%s: colour background saved", path)
        except OSError as err:  # a full disk, a folder gone: the model in memory still serves
            log.warning("%s: background not saved (%s); using it unsaved", path, files.describe_error(err))
        self._save = False

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
            self._hold = self._forget = None
            self._save = self._resave
        else:
            self._new_size.reset()
        if self.shape is None:
            self._take_size(h, w)
        was_learning = self.segmenter.learning
        ts = frame.timestamp
        mask = self.segmenter.segment(frame.color, self._hold, ts, self._forget)
        self.last_mask = mask
        self._forget = None
        if self.segmenter.learning:
            return ObstacleSnapshot.empty(ts)
        if was_learning:
            self._learned()
        s, cal = self.s, self.calibration
        blobs, groups, points, attrs = self._detections(mask, ts)
        tracks = self.people.update(ts, points, attrs)
        ghosts = self._keep(frame.color, ts, tracks, blobs, groups)
        if ghosts:  # no visitor: gone at once, not coasting out over drop_frames as one who was lost
            self.people.tracks = [tr for tr in self.people.tracks if tr.id not in ghosts]
            tracks = [tr for tr in tracks if tr.id not in ghosts]
        return _capsules(ts, tracks, cal.floor_y, s.person_height)

    def _detections(
        self, mask: np.ndarray, ts: float
    ) -> tuple[list[Blob], list[list[int]], np.ndarray, list[dict]]:
        """Blobs, the groups of them that are one person each (or, see _split, a few), and the
        floor points and attributes of the people in them (``detection``: the group's index, so a
        track can find its pixels)."""
        s, cal = self.s, self.calibration
        # where the confirmed tracks expect to be now: a group two of them walk into is both
        confirmed = [tr for tr in self.people.tracks if tr.confirmed]
        expected = np.array([(tr.position + tr.velocity * (ts - tr.time))[[0, 2]] for tr in confirmed]).reshape(-1, 2)
        blobs = find_blobs(mask, 20)
        frags = []
        for i, blob in enumerate(blobs):
            xz = cal.pixel_to_world(blob.contour.astype(np.float64))[:, [0, 2]].astype(np.float32)
            area = float(cv2.contourArea(xz))
            # a speck near a person would only widen them; a fragment this small is neither
            if area >= FRAGMENT_SHARE * s.min_blob_area:
                # the outline within a pixel is enough to measure gaps, at a tenth of its points
                outline = cv2.approxPolyDP(blob.contour.reshape(-1, 1, 2), 0.7, True).reshape(-1, 2)
                outline = cal.pixel_to_world(outline.astype(np.float64))[:, [0, 2]]
                person = area >= s.fragment_area
                # a person's position is their body's: a swinging foot, a rim of penumbra left on
                # them, move a blob's centroid, not the middle of its core
                uv = _body_pixel(blob, LIMB_WIDTH * np.sqrt(blob.area / area)) if person else blob.centroid
                frags.append(_Fragment(i, outline, area, cal.pixel_to_world(uv)[0, [0, 2]], person))
        groups, points, attrs = [], [], []
        for group in _merge_fragments(frags, s.merge_distance, s.max_radius):
            area = sum(f.area for f in group)
            if not s.min_blob_area <= area <= s.max_blob_area:
                continue
            people = [f for f in group if f.person]
            if people:  # a person and pieces that are theirs: where the person is, and as wide as all of it
                (body,) = people
                found = [(body.centre, area)]
                inside = [k for k, p in enumerate(expected) if _inside(p, [f.xz for f in group], SPLIT_MARGIN)]
                # how many people: as many as walked into it, if each can have fragment_area of it,
                # and at least as many as its area needs (Kilambi et al. 2008, "Estimating
                # pedestrian counts in groups", count a group by its area on the ground plane)
                most = int(area / s.fragment_area)
                least = int(np.ceil(area / (ONE_PERSON_MAX * s.fragment_area)))
                n = min(max(len(inside), least), most)
                if n >= 2:
                    seeds = expected[inside][np.argsort(np.linalg.norm(expected[inside] - body.centre, axis=1))][:n]
                    found = _split([blobs[f.blob] for f in group], area, seeds, n, cal)
                for centre, part in found:
                    points.append([centre[0], cal.floor_y, centre[1]])
                    radius = np.sqrt(part / np.pi)
                    attrs.append({"radius": float(np.clip(radius, s.min_radius, s.max_radius)), "area": part,
                                  "detection": len(groups)})
            else:  # pieces alone (the floor's colour cut the rest away): the disc covering them
                pixels = sum(blobs[f.blob].area for f in group)
                if sum(self.segmenter.shaded(blobs[f.blob]) for f in group) > SHADED_SHARE * pixels:
                    continue  # bits of a shadow (or of one learned) whose texture the ramp of light hid: no person
                centre = sum(f.centre * f.area for f in group) / area
                radius = float(np.max(np.linalg.norm(np.concatenate([f.xz for f in group]) - centre, axis=1)))
                points.append([centre[0], cal.floor_y, centre[1]])
                attrs.append({"radius": float(np.clip(radius, s.min_radius, s.max_radius)), "area": area,
                              "detection": len(groups)})
            groups.append([f.blob for f in group])
        return blobs, groups, np.array(points, np.float64).reshape(-1, 3), attrs

    def _keep(self, color: np.ndarray, ts: float, tracks: list[Track], blobs: list[Blob], groups) -> set[int]:
        """The ``hold`` (and ``forget``) masks for the next frame from this frame's confirmed tracks;
        the ids of the tracks found to be ghosts."""
        held, ghosts, gone = [], [], set()
        seen = set()
        shared = collections.Counter(tr.attrs.get("detection") for tr in tracks if tr.last_seen == ts)
        for tr in tracks:
            k = tr.attrs.get("detection")
            if tr.last_seen != ts or k is None or k >= len(groups):
                continue  # coasting: nothing of it in this frame to hold
            seen.add(tr.id)
            contours = [blobs[i].contour.reshape(-1, 1, 2) for i in groups[k]]
            # a ghost is the print of something gone: it does not walk, nor do two tracks share it
            # (see _split). One that does is someone there now, whatever the background holds under
            # them (a print of dark hair from the learning made a walker's outline look like one,
            # and they were forgotten into the floor)
            still = float(np.hypot(tr.velocity[0], tr.velocity[2])) < GHOST_MAX_SPEED and shared[k] == 1
            votes = self._ghost_votes.get(tr.id, 0) + 1 if still and self.segmenter.is_ghost(color, contours) else 0
            self._ghost_votes[tr.id] = votes
            if votes >= GHOST_FRAMES:  # a few frames in a row: one noisy frame must not erase a visitor
                log.info("track %d is a ghost (its outline is in the background, not the frame): forgotten", tr.id)
                ghosts += contours
                gone.add(tr.id)
            else:
                held += contours
        self._ghost_votes = {i: v for i, v in self._ghost_votes.items() if i in seen and i not in gone}
        self._hold = self._region(held)
        self._forget = self._region(ghosts) if ghosts else None
        return gone

    def _region(self, contours: list[np.ndarray]) -> np.ndarray:
        """uint8 0/255: the outlines filled, and widened by the margin."""
        mask = np.zeros(self.shape, np.uint8)
        if contours:
            cv2.drawContours(mask, contours, -1, 255, cv2.FILLED)
            cv2.drawContours(mask, contours, -1, 255, 2 * self._margin + 1)
        return mask


@dataclass(frozen=True)
class _Fragment:
    blob: int  # index in the frame's blobs
    xz: np.ndarray  # (K, 2) outline on the floor (within a pixel), metres
    area: float  # m^2
    centre: np.ndarray  # (2,) floor x, z: the body's for a person, else the centroid
    person: bool  # at least fragment_area: a person (or most of one), never joined to another


def _body_pixel(blob: Blob, limb_px: float) -> np.ndarray:
    """The centroid (u, v) of a blob's core: the pixels farther than ``limb_px`` / 2 from its
    outline, which is what an opening by a disc of a limb's width keeps (less its rim), at the
    cost of one distance transform of the blob's box. Feet, arms and a rim of shadow are narrower
    than that and drop out; the blob's centroid if nothing is left."""
    m = cv2.copyMakeBorder(blob.mask.view(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    core = cv2.compare(cv2.distanceTransform(m, cv2.DIST_L2, 3), limb_px / 2, cv2.CMP_GT)
    mo = cv2.moments(core, True)
    if mo["m00"] < 1:
        return blob.centroid
    u, v = blob.bbox[:2]
    return np.array([mo["m10"] / mo["m00"] + u - 1, mo["m01"] / mo["m00"] + v - 1])


def _inside(p: np.ndarray, outlines: list[np.ndarray], margin: float) -> bool:
    """Whether the floor point p lies inside one of the floor ``outlines`` or within ``margin`` of it."""
    pt = (float(p[0]), float(p[1]))
    return any(cv2.pointPolygonTest(o.astype(np.float32), pt, True) >= -margin for o in outlines)


def _split(
    blobs: list[Blob], area: float, seeds: np.ndarray, n: int, cal: FloorHomography
) -> list[tuple[np.ndarray, float]]:
    """(floor centre, area) of each of ``n`` people in one group of blobs: its pixels on the floor,
    shared by k-means (Lloyd) from ``seeds`` (where the tracks that walked into it expect to be),
    and, for people no track brought, from the pixels farthest from every seed (Gonzalez's
    farthest-point start). From above two people side by side, or one passing another, are one
    blob; without this one of their tracks coasted, lost, and came back under a new id when they
    parted (as W4, Haritaoglu, Harwood & Davis 2000, keeps the people of a merged group by where
    they were)."""
    uv = np.concatenate([np.column_stack(np.nonzero(b.mask)[::-1]) + b.bbox[:2] for b in blobs]).astype(np.float64)
    xz = cal.pixel_to_world(uv)[:, [0, 2]]
    centres = seeds.astype(np.float64).reshape(-1, 2)
    if not len(centres):
        centres = xz.mean(0, keepdims=True)
        centres = xz[[np.argmax(((xz - centres) ** 2).sum(-1))]]
    while len(centres) < n:
        nearest = np.min(((xz[:, None, :] - centres[None, :, :]) ** 2).sum(-1), axis=1)
        centres = np.vstack([centres, xz[np.argmax(nearest)]])
    for _ in range(SPLIT_ITERATIONS):
        label = np.argmin(((xz[:, None, :] - centres[None, :, :]) ** 2).sum(-1), axis=1)
        counts = np.bincount(label, minlength=len(centres))
        sums = np.stack([np.bincount(label, xz[:, d], minlength=len(centres)) for d in range(2)], axis=1)
        centres = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
    return [(c, area * k / len(xz)) for c, k in zip(centres, counts, strict=True)]


def _points_to_outline(p: np.ndarray, outline: np.ndarray) -> float:
    """Least distance from the points p (K, 2) to the closed polygon ``outline`` (L, 2)."""
    a = outline
    d = np.roll(outline, -1, axis=0) - a
    dd = np.maximum(np.einsum("ij,ij->i", d, d), 1e-18)
    rel = p[:, None, :] - a[None, :, :]
    t = np.clip(np.einsum("klj,lj->kl", rel, d) / dd, 0.0, 1.0)
    return float(np.sqrt(np.min(np.sum((rel - t[..., None] * d) ** 2, axis=-1))))


def _outline_gap(a: np.ndarray, b: np.ndarray, distance: float) -> float:
    """Distance between two floor outlines (0 if one lies inside the other: a blob in a hole),
    exact only where it matters: whether it is within ``distance``."""
    for inner, outer in ((a, b), (b, a)):
        if cv2.pointPolygonTest(outer.astype(np.float32), (float(inner[0, 0]), float(inner[0, 1])), False) >= 0:
            return 0.0
    # the nearest corners first: the gap is at most their distance, and at least that less half
    # the longest sides (each point of a side is within half its length of a corner)
    corners = float(np.sqrt(np.min(np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1))))
    sides = sum(float(np.max(np.linalg.norm(np.diff(o, axis=0, append=o[:1]), axis=1))) for o in (a, b))
    if corners <= distance or corners - sides / 2 > distance:
        return corners
    return min(_points_to_outline(a, b), _points_to_outline(b, a))


def _merge_fragments(frags: list[_Fragment], distance: float, max_radius: float) -> list[list[_Fragment]]:
    """Groups of fragments that are one person: single linkage on the gap between outlines
    (nearest pairs first), a union made only if one side has no person in it yet (a piece joins
    a person, or other pieces; two people never join, however close: neighbours walking 0.25 m
    apart did) and the whole still fits in a disc of max_radius around its centre."""
    parent = list(range(len(frags)))
    person = [f.person for f in frags]  # of each root: whether its group holds a person

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if distance > 0 and len(frags) > 1:
        lo = np.array([f.xz.min(0) for f in frags])
        hi = np.array([f.xz.max(0) for f in frags])
        pairs = []
        for i, j in itertools.combinations(range(len(frags)), 2):
            if person[i] and person[j]:
                continue
            if np.any(lo[i] - hi[j] > distance) or np.any(lo[j] - hi[i] > distance):
                continue  # their bounding boxes are too far apart for any two points to be close
            gap = _outline_gap(frags[i].xz, frags[j].xz, distance)
            if gap <= distance:
                pairs.append((gap, i, j))
        for _, i, j in sorted(pairs):
            ri, rj = root(i), root(j)
            if ri == rj or (person[ri] and person[rj]):
                continue
            members = [f for k, f in enumerate(frags) if root(k) in (ri, rj)]
            area = sum(f.area for f in members)
            centre = sum(f.centre * f.area for f in members) / area
            if np.max(np.linalg.norm(np.concatenate([f.xz for f in members]) - centre, axis=1)) <= max_radius:
                parent[rj] = ri
                person[ri] = person[ri] or person[rj]
    groups: dict[int, list[_Fragment]] = {}
    for k, f in enumerate(frags):
        groups.setdefault(root(k), []).append(f)
    return list(groups.values())


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
