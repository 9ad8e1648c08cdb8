"""Segmentation: which pixels are visitors (and which are hands touching the water).

Depth: a background model of the empty scene (per-pixel median and noise over N frames). A
pixel is a visitor where it is closer than the background by more than
max(k * noise, fraction * depth, minimum step), and the height that step makes above the
floor or rock lies within the height band. Every per-pixel threshold is turned into a depth
interval once, at start, so a frame costs one subtraction, two cv2.inRange and the
morphology.

Colour: a per-pixel running Gaussian of our own (mean colour and variance, float32), not
OpenCV's MOG2, because MOG2 learns every pixel at one rate and cannot be told "not these":

- it starts from the per-pixel mode (the colour most frames agree on) of the first
  ``background_seconds`` (or from a saved empty venue), so visitors who walk through while it
  learns are left out, and nobody present in the first frame leaves a ghost;
- after that a pixel is foreground when its squared colour distance to the mean exceeds
  ``var_threshold`` times its variance (MOG2's test, with a noise floor); the pixels under
  confirmed tracks (``hold``) are never learned, so a visitor who stops stays; other foreground
  is absorbed over ``absorb_seconds`` (a moved bench), the background follows light over
  ``drift_seconds``, and a track the pipeline finds to be a ghost (``forget``) is replaced at once;
- a foreground pixel is a shadow only when it is darker than the floor by a ratio within a band,
  of the floor's colour, and has the floor's texture (see :meth:`ColorSegmenter._shadows`); where
  the floor is too flat for the texture to tell, it stays foreground: a lost shadow costs a
  little position, a lost light shirt splits a person in two. The same test, lighter by the
  inverse ratio, finds the floor where the model learned a shadow (a crowd walking through the
  learning), which is learned at once.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from waterrock import files
from waterrock.tracking.blobs import Blob
from waterrock.tracking.calibrate import DepthCalibration

_NEVER = np.float32(3.0e38)  # a threshold no depth step reaches: pixel excluded


class OtherSensorsBackground(ValueError):
    """The background file holds the other kind (a depth background where colour was asked for):
    the venue's other sensor's, never to be written over."""


@dataclass(frozen=True)
class DepthBackground:
    """The empty scene: depth (H, W) float32 mm (0: never seen) and its noise (sigma, mm)."""

    depth: np.ndarray
    noise: np.ndarray

    @classmethod
    def learn(cls, frames: list[np.ndarray] | np.ndarray) -> DepthBackground:
        """Per-pixel median and robust sigma (1.4826 MAD) of the valid (non-zero) readings.

        A pixel valid in fewer than half the frames (a flickering edge, a black object that
        absorbs the projector) is left out of the model: it can never be foreground.
        """
        stack = np.asarray(frames, np.float32)
        if stack.ndim != 3 or not len(stack):
            raise ValueError("a background needs one or more (H, W) depth frames")
        n, h, w = stack.shape
        # one row of readings per pixel, sorted: the invalid zeros come first
        readings = np.sort(stack.reshape(n, h * w).T, axis=1)
        valid = np.count_nonzero(readings > 0, axis=1)
        med = _median_of_last(readings, valid)
        deviation = np.abs(readings - med[:, None])
        deviation[readings <= 0] = -np.inf  # sorted before every valid reading's
        mad = _median_of_last(np.sort(deviation, axis=1), valid)
        enough = valid * 2 >= n
        depth = np.where(enough & np.isfinite(med), med, 0).astype(np.float32).reshape(h, w)
        # one median of integer millimetres has a MAD of 0: quantisation is the noise floor
        noise = np.where(depth > 0, np.maximum(1.4826 * np.nan_to_num(mad.reshape(h, w)), 0.5), 0).astype(np.float32)
        return cls(depth, noise)

    @property
    def shape(self) -> tuple[int, int]:
        return self.depth.shape

    def save(self, path: str | Path) -> Path:
        """Write the model through a temporary and a rename (files.save_npz): written in place,
        a full disk or a power cut left a torn file that stopped the tracker at the next start."""
        return files.save_npz(path, depth=self.depth, noise=self.noise)

    @classmethod
    def load(cls, path: str | Path) -> DepthBackground:
        """The model in ``path``; ValueError naming the file if it is torn or not a background
        (a half-written archive may still open, so the arrays are checked too)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                depth, noise = z["depth"].astype(np.float32), z["noise"].astype(np.float32)
            if depth.ndim != 2 or depth.shape != noise.shape or not all(np.isfinite(a).all() for a in (depth, noise)):
                raise ValueError(f"arrays of shapes {depth.shape} and {noise.shape}, or not finite")
        except FileNotFoundError:
            raise
        except files.UNREADABLE as err:
            raise ValueError(f"{path}: not a usable depth background: {files.describe_error(err)}") from None
        return cls(depth, noise)


def _median_of_last(rows: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The median of the last count[i] values of each sorted row i (NaN where count is 0): the
    mean of the two middle ones for an even count, as numpy's median takes it. Learning a
    background of 30 frames of 640 x 480 this way took 0.31 s on 2 cores, against 0.64 s with
    np.nanmedian (which took 3.3 to 4 s while the frame loop ran beside it)."""
    k = rows.shape[1]
    start = k - count
    lo = np.take_along_axis(rows, (start + (count - 1) // 2)[:, None].clip(0, k - 1), axis=1)[:, 0]
    hi = np.take_along_axis(rows, (start + count // 2)[:, None].clip(0, k - 1), axis=1)[:, 0]
    return np.where(count > 0, 0.5 * (lo + hi), np.nan).astype(np.float32)


def _kernel(px: int) -> np.ndarray | None:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (px, px)) if px > 1 else None


def clean_mask(mask: np.ndarray, open_k: np.ndarray | None, close_k: np.ndarray | None) -> np.ndarray:
    """Opening removes speckle (noise, dropouts), closing fills the holes they leave in a body."""
    if open_k is not None:
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, open_k)
    if close_k is not None:
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, close_k)
    return mask


class DepthSegmenter:
    """Body and touch masks (uint8, 0/255) of a depth frame against a background."""

    def __init__(
        self,
        background: DepthBackground,
        calibration: DepthCalibration,
        *,
        noise_k: float = 4.0,
        depth_step_fraction: float = 0.01,
        min_depth_step_mm: float = 25.0,
        min_height: float = 0.12,
        max_height: float = 2.5,
        touch_plane: tuple[float, float, float, float] | None = None,
        touch_band: float = 0.08,
        open_px: int = 3,
        close_px: int = 7,
    ) -> None:
        bg = background.depth
        if calibration.intrinsics.height != bg.shape[0] or calibration.intrinsics.width != bg.shape[1]:
            raise ValueError(
                f"calibration is for {calibration.intrinsics.width}x{calibration.intrinsics.height},"
                f" the background is {bg.shape[1]}x{bg.shape[0]}"
            )
        self.background = background
        self.shape = bg.shape
        rays = calibration.rays_world()
        # metres of height gained per metre the depth steps towards the camera
        up = -rays[..., 1]
        step = np.maximum.reduce(
            [noise_k * background.noise, depth_step_fraction * bg, np.full_like(bg, min_depth_step_mm)]
        )
        seen = (bg > 0) & (up > 0.05)  # a ray that does not look down cannot measure height
        with np.errstate(divide="ignore"):
            lo = np.maximum(step, 1000.0 * min_height / up)
            hi = 1000.0 * max_height / up
        self._step = np.where(bg > 0, step, _NEVER).astype(np.float32)
        self._lo = np.where(seen, lo, _NEVER).astype(np.float32)
        self._hi = np.where(seen, hi, _NEVER).astype(np.float32)
        self._touch = None
        self.touch_rect = (0, 0, 0, 0)  # x, y, w, h of the pixels that can see the touch band
        if touch_plane is not None:
            n = np.asarray(touch_plane[:3], np.float64)
            norm = np.linalg.norm(n)
            n, plane_d = n / norm, touch_plane[3] / norm
            # signed distance to the plane of the pixel at depth d (m): d * gn + c
            gn = rays @ n
            c = float(n @ calibration.translation - plane_d)
            with np.errstate(divide="ignore", invalid="ignore"):
                d1, d2 = (-touch_band - c) / gn, (touch_band - c) / gn
            ok = np.abs(gn) > 1e-6
            self._touch = (
                np.where(ok, 1000 * np.minimum(d1, d2), _NEVER).astype(np.float32),
                np.where(ok, 1000 * np.maximum(d1, d2), -1).astype(np.float32),
            )
            # only where the band lies in front of the background can a hand be seen in it:
            # the touch mask is computed in that rectangle alone (a strip along a wall)
            possible = ok & (self._touch[0] < bg - self._step) & (self._touch[1] > 0)
            self.touch_rect = cv2.boundingRect(possible.astype(np.uint8))
        self._open = _kernel(open_px)
        self._close = _kernel(close_px)

    def segment(self, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(body mask, touch mask or None) of an (H, W) uint16 mm depth frame."""
        d = depth.astype(np.float32)
        step = cv2.subtract(self.background.depth, d)
        valid = cv2.compare(depth, 0, cv2.CMP_GT)
        body = cv2.bitwise_and(cv2.inRange(step, self._lo, self._hi), valid)
        body = clean_mask(body, self._open, self._close)
        touch = None
        if self._touch is not None:
            touch = np.zeros_like(body)
            x, y, w, h = self.touch_rect
            if w and h:
                win = (slice(y, y + h), slice(x, x + w))
                lo, hi = self._touch[0][win], self._touch[1][win]
                near = cv2.bitwise_and(cv2.inRange(d[win], lo, hi), valid[win])
                closer = cv2.compare(step[win], self._step[win], cv2.CMP_GT)
                touch[win] = clean_mask(cv2.bitwise_and(near, closer), self._open, None)
        return body, touch


# --- colour -------------------------------------------------------------------------------

_ONES = np.ones((1, 3), np.float32)  # cv2.transform with this sums a pixel's three channels
LEARN_FRAMES_MAX = 15  # frames the model is learned from, spread across the learning window
MAX_DT = 1.0  # s: a longer gap between frames (a stall) learns no more than this
UPDATE_SECONDS = 0.2  # s between updates of the model
REFRESH_SECONDS = 1.0  # s between recomputations of the background's texture statistics
SHADOW_WINDOW = 7  # px: side of the patch the texture test correlates
TEXTURE_K = 3.0  # the floor's patch sigma must exceed this many noise sigmas for the texture test
CHROMA_NOISE_K2 = 9.2  # chi-square(2) at 99%: sensor noise alone moves a colour off its ray this far
SHADOW_WEAK = 0.5  # share of shadow_ncc a patch next to a shadow needs to join it
SHADOW_GROW_PX = 4  # how far (px) a shadow grows into such patches
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
GHOST_EDGE_RATIO = 0.6  # a region whose outline has under this share of the background's edges is a ghost
GHOST_BLUR_PX = 2.0  # sigma of the blur before the ghost test's gradients
GHOST_MIN_EDGE = 8.0  # mean blurred Sobel magnitude below which the background has no outline to lose


@dataclass(frozen=True)
class ColorBackground:
    """The empty venue in colour: mean (H, W, 3) float32 BGR and variance (H, W) float32, the
    per-channel sigma^2 averaged over the three channels."""

    mean: np.ndarray
    variance: np.ndarray

    @classmethod
    def learn(cls, frames: list[np.ndarray] | np.ndarray) -> ColorBackground:
        """Per-pixel robust mean colour and variance of (H, W, 3) uint8 frames, in the order taken.

        The mean is that of the largest set of frames that agree within the camera's noise (the
        mode, brighter on a tie: a shadow only darkens), so whoever walks through is left out and
        a pixel covered in fewer than half the frames keeps the floor's colour (the first frame
        alone made everyone present in it a ghost). Not the median of each channel: where a
        crowd's shadows and passers-by covered a pixel for most of the window it mixed the floor
        in shadow, a penumbra and someone's trousers into a colour that was none of them, and the
        floor that came back was not told from it; the mode is one of the colours seen, most
        often the floor lit or in shadow, and then ColorSegmenter._shadows tells the floor lit
        up again for what it is.

        The noise is taken from the absolute differences between consecutive frames, as Elgammal,
        Harwood & Davis 2000 ("Non-parametric model for background subtraction") take it, not from
        the deviations about the median: a walker's soft shadow, 0.7 m long, darkens a pixel for
        most of a 1 s window and the MAD took its depth for noise (sigma 9 grey levels for a
        sensor's 2), which blinded the shadow test's texture check there. A shadow changes a pixel
        between two frames only as it comes and goes, a shirt as its edge, feet or hair pass: of
        the differences, the lower quartile is noise until three quarters are such passages (the
        median was not, where a crowd walked through half the window); for |N(0, 2 sigma^2)| it is
        0.4506 sigma. Which frames agree is judged by the camera's noise, not by each pixel's (where
        a crowd passed through most of the window even the quartile is more than noise): the
        median over the image of each pixel's median difference (most of the floor is seen empty),
        0.954 sigma; the quartile, in whole grey levels, is too coarse for it.
        """
        stack = np.asarray(frames)
        if stack.ndim != 4 or stack.shape[-1] != 3 or not len(stack):
            raise ValueError("a colour background needs one or more (H, W, 3) frames")
        stack = stack.astype(np.uint8, copy=False)  # uint8, int16 and float32 throughout: no float64
        n, h, w, _ = stack.shape
        camera = 1.0  # sigma, grey levels
        if n > 1:
            steps = np.sort(np.abs(np.diff(stack.astype(np.int16), axis=0)), axis=0)
            sigma = _sorted_quantile(steps, 0.25) * np.float32(1 / 0.4506)
            camera = max(float(np.median(_sorted_quantile(steps[:, ::4, ::4], 0.5))) / 0.954, camera)
        else:
            sigma = np.zeros(stack.shape[1:], np.float32)
        variance = cv2.transform(cv2.multiply(sigma, sigma), _ONES / 3).reshape(h, w)
        # two samples differ by 2 sigma^2 a channel: chi-square(3) exceeds 16.3 once in a thousand
        tol = 16.3 * 2 * camera * camera
        flat = stack.reshape(n, h, w * 3)

        def agree(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            """1 where the colours of a and b (flat (h, w*3) uint8 or float32) agree, else 0 (uint8)."""
            d = cv2.absdiff(a, b)
            d2 = cv2.transform(cv2.multiply(d, d, dtype=cv2.CV_32F).reshape(h, w, 3), _ONES)
            return cv2.compare(d2, tol, cv2.CMP_LE) // 255

        votes = np.ones((n, h, w), np.uint8)  # each frame agrees with itself
        for j, k in itertools.combinations(range(n), 2):
            both = agree(flat[j], flat[k])
            votes[j] += both
            votes[k] += both
        # the most votes, and of those the brightest (a sum of the channels under 766): int16 holds
        # it for up to 31 frames (the segmenter learns from LEARN_FRAMES_MAX)
        dtype = np.int16 if n < 32 else np.int32
        score = votes.astype(dtype) * dtype(1024) + stack.sum(axis=3, dtype=dtype)
        centre = np.take_along_axis(flat.reshape(n, h, w, 3), np.argmax(score, axis=0)[None, :, :, None], axis=0)
        centre = centre.reshape(h, w * 3)
        total = np.zeros((h, w * 3), np.float32)
        count = np.zeros((h, w), np.float32)
        for j in range(n):
            near = agree(flat[j], centre)
            cv2.accumulate(flat[j].reshape(h, w, 3), total.reshape(h, w, 3), near)
            count += near
        mean = total.reshape(h, w, 3) / count[..., None]
        return cls(np.ascontiguousarray(mean, np.float32), variance)

    @property
    def shape(self) -> tuple[int, int]:
        return self.mean.shape[:2]

    def save(self, path: str | Path) -> Path:
        """Written as DepthBackground is (files.save_npz: a temporary and a rename), under names
        of its own, so that neither kind of background is ever taken for the other."""
        return files.save_npz(path, color_mean=self.mean, color_variance=self.variance)

    @classmethod
    def load(cls, path: str | Path) -> ColorBackground:
        """The model in ``path``; ValueError naming the file if it is torn, a depth background
        or not a background at all (a half-written archive may still open: the arrays are checked)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if "color_mean" not in z.files and "depth" in z.files:
                    raise OtherSensorsBackground(f"{path}: a depth background, not a colour one")
                mean, variance = z["color_mean"].astype(np.float32), z["color_variance"].astype(np.float32)
            if mean.ndim != 3 or mean.shape[2] != 3 or variance.shape != mean.shape[:2]:
                raise ValueError(f"arrays of shapes {mean.shape} and {variance.shape}")
            if not (np.isfinite(mean).all() and np.isfinite(variance).all()) or variance.min(initial=0) < 0:
                raise ValueError("values not finite, or a negative variance")
        except FileNotFoundError:
            raise
        except files.UNREADABLE as err:
            if str(err).startswith(f"{path}:"):
                raise
            raise ValueError(f"{path}: not a usable colour background: {files.describe_error(err)}") from None
        return cls(mean, variance)


def _sorted_quantile(rows: np.ndarray, q: float) -> np.ndarray:
    """float32 q-quantile along axis 0 of an array sorted along it (linear between ranks, as numpy's)."""
    pos = q * (len(rows) - 1)
    k = int(pos)
    frac = pos - k
    lo, hi = rows[k].astype(np.float32), rows[min(k + 1, len(rows) - 1)].astype(np.float32)
    return cv2.addWeighted(lo, 1.0 - frac, hi, frac, 0.0)


def _norm2(mean: np.ndarray) -> np.ndarray:
    """|mu|^2 of each pixel of a (H, W, 3) float32 image, at least 1 (it divides)."""
    return cv2.max(cv2.transform(cv2.multiply(mean, mean), _ONES), 1.0)


def _rate(seconds: float, dt: float) -> float:
    """The share of a step learned in dt by a first-order filter of time constant ``seconds``."""
    return float(1.0 - np.exp(-dt / seconds)) if seconds > 0 else 1.0


class ColorSegmenter:
    """Visitors against a learned colour background that learns only where it is told it may.

    ``segment(color, hold, timestamp, forget)`` returns a uint8 0/255 mask (all 0 while the
    background is still being learned, see ``learning``). ``hold`` (uint8, non-zero: pixels of
    confirmed tracks) is never learned; ``forget`` (uint8: a ghost) is replaced by this frame.
    Timestamps count the learning window and set the learning rates; without them a frame is
    taken to be 1/30 s after the last.
    """

    def __init__(
        self,
        background: ColorBackground | None = None,
        *,
        var_threshold: float = 32.0,
        noise: float = 3.0,
        background_seconds: float = 2.0,
        drift_seconds: float = 5.0,
        absorb_seconds: float = 30.0,
        shadow_ratio: tuple[float, float] = (0.4, 0.9),
        shadow_chroma: float = 0.1,
        shadow_ncc: float = 0.7,
        open_px: int = 3,
        close_px: int = 7,
    ) -> None:
        self.var_threshold = var_threshold
        self.noise_var = float(noise * noise)  # a Python float: cv2 takes no numpy scalar
        self.background_seconds = background_seconds
        self.drift_seconds, self.absorb_seconds = drift_seconds, absorb_seconds
        self.shadow_ratio, self.shadow_chroma, self.shadow_ncc = shadow_ratio, shadow_chroma, shadow_ncc
        self._open = _kernel(open_px)
        self._close = _kernel(close_px)
        self._t: float | None = None  # timestamp of the last frame
        self._learning: list[np.ndarray] = []
        self._t0 = self._kept = 0.0
        self._mean: np.ndarray | None = None
        self._var3: np.ndarray | None = None  # 3 x the per-channel variance: the expected squared distance
        self._refreshed = -np.inf
        self._updated: float | None = None  # timestamp of the last update of the model
        self.shadow: np.ndarray | None = None  # the last frame's shadow pixels (uint8 0/255), for a view
        self.relit: np.ndarray | None = None  # the last frame's floor lit up against a shadow learned (0/255)
        # the last frame's foreground of the floor's colour, darker or lighter: see shaded()
        self._shaded: tuple[np.ndarray, tuple[slice, slice]] | None = None
        if background is not None:
            self._take(background)

    @property
    def learning(self) -> bool:
        return self._mean is None

    @property
    def shape(self) -> tuple[int, int] | None:
        return None if self._mean is None else self._mean.shape[:2]

    @property
    def background(self) -> ColorBackground | None:
        """A copy of the model as it stands (to save), or None while learning."""
        if self._mean is None:
            return None
        return ColorBackground(self._mean.copy(), self._var3 * np.float32(1 / 3))

    def _take(self, bg: ColorBackground) -> None:
        self._mean = np.ascontiguousarray(bg.mean, np.float32).copy()
        self._var3 = np.ascontiguousarray(bg.variance * np.float32(3), np.float32)
        self._refreshed = -np.inf
        self._updated = None

    def _learn(self, color: np.ndarray, t: float) -> np.ndarray:
        """Keep up to LEARN_FRAMES_MAX frames spread over the window (memory and the learning's
        cost stay bounded whatever the frame rate), and build the model once the window is over."""
        if self._learning and (color.shape != self._learning[0].shape or t < self._t0):
            self._learning = []  # a camera of another size, a clock that went back: start over
        if not self._learning:
            self._t0, self._kept = t, -np.inf
        spacing = self.background_seconds / (LEARN_FRAMES_MAX - 1)
        if t - self._kept >= spacing or t - self._t0 >= self.background_seconds:
            self._learning.append(color.copy())
            self._kept = t
        if t - self._t0 >= self.background_seconds:
            self._take(ColorBackground.learn(self._learning[-LEARN_FRAMES_MAX:]))
            self._learning = []
        return np.zeros(color.shape[:2], np.uint8)

    def _refresh(self) -> None:
        """What the shadow and ghost tests need of the background, recomputed once a second: it
        changes over seconds (drift) to minutes (absorbing), and recomputing it each frame would
        cost four box filters of the whole image."""
        mean = self._mean
        self._grey = cv2.cvtColor(mean, cv2.COLOR_BGR2GRAY)
        win = (SHADOW_WINDOW, SHADOW_WINDOW)
        self._box_mean = cv2.boxFilter(self._grey, -1, win)
        self._box_var = cv2.subtract(cv2.boxFilter(cv2.multiply(self._grey, self._grey), -1, win),
                                     cv2.multiply(self._box_mean, self._box_mean))
        # the texture test means something only where the floor's patch varies well beyond the
        # camera's noise: the median pixel's (a pixel's own holds whatever a crowd did while it
        # was learned, and hid the floor's texture from the test where shadows had passed)
        sigma2 = max(float(np.median(self._var3[::4, ::4])) / 3, self.noise_var)
        self._texture_min = sigma2 * TEXTURE_K * TEXTURE_K
        self._mm = _norm2(mean)
        self._refreshed = self._t

    def segment(
        self,
        color: np.ndarray,
        hold: np.ndarray | None = None,
        timestamp: float | None = None,
        forget: np.ndarray | None = None,
    ) -> np.ndarray:
        t = (0.0 if self._t is None else self._t + 1 / 30) if timestamp is None else float(timestamp)
        self._t = t
        if self._mean is None or self._mean.shape != color.shape:
            self._mean = None
            self.shadow = self.relit = self._shaded = None
            return self._learn(color, t)
        if self._updated is None or t < self._updated:  # the first frame on this model, or a clock gone back
            self._updated = t
        if t - self._refreshed >= REFRESH_SECONDS or t < self._refreshed:
            self._refresh()
        f = color.astype(np.float32)
        diff = cv2.subtract(f, self._mean)
        d2 = cv2.transform(cv2.multiply(diff, diff), _ONES)  # squared colour distance
        # MOG2's test (squared distance over var_threshold x the variance), the variance floored
        # at the sensor's noise so that a pixel that never varied does not flicker at one grey level
        sigma2 = cv2.max(self._var3, 3.0 * self.noise_var)
        fg = cv2.compare(d2, cv2.multiply(sigma2, self.var_threshold / 3), cv2.CMP_GT)
        self._shaded = None
        self.shadow, self.relit = self._shadows(color, diff, d2, sigma2, fg)
        for floor in (self.shadow, self.relit):
            if floor is not None:
                fg = cv2.subtract(fg, floor)
        mask = clean_mask(fg, self._open, self._close)
        # the background changes over seconds: learning it UPDATE_SECONDS apart is as good as
        # every frame, and costs a third of it at 15 frames a second (a ghost is forgotten at once)
        since = t - self._updated
        if since >= UPDATE_SECONDS or forget is not None:
            self._update(diff, d2, mask, self.shadow, self.relit, hold, forget, min(since, MAX_DT))
            self._updated = t
        return mask

    def _update(self, diff, d2, mask, shadow, relit, hold, forget, dt) -> None:
        """Selective update: each pixel's rate by what it is, as bits of a code and a look-up
        table (the whole image costs a few cv2 calls): a ghost is replaced at once, held pixels
        and shadows are not learned, the floor relit (a shadow the model learned, now gone) is
        replaced at once too, held or not (it passed the texture test: it is no visitor, and held
        it kept a ghost tracked for as long as it was), other foreground is absorbed at the slow
        rate, background follows at the drift rate. The variance learns from background pixels
        alone: a visitor's colour, a shadow, are not noise.

        A shadow learned would outlive its visitor: the floor they leave would look lit up, and
        be foreground for as long as it takes to learn it back. Unless it covers most of the
        picture: that is the light changing, and the background follows it.
        """
        if shadow is not None and cv2.countNonZero(shadow) * 2 > shadow.size:
            shadow = None
        code = cv2.bitwise_and(mask, 1)  # bit 1: foreground (255 & 1)
        for extra, bit in ((shadow, 4), (hold, 2), (forget, 8), (relit, 16)):
            if extra is not None:
                code = cv2.bitwise_or(code, cv2.bitwise_and(extra, bit))
        drift, absorb = _rate(self.drift_seconds, dt), _rate(self.absorb_seconds, dt)
        bits = np.arange(256)
        lut = np.where(bits & 24, 1.0, np.where(bits & 6, 0.0, np.where(bits & 1, absorb, drift))).astype(np.float32)
        rate = cv2.LUT(cv2.merge([code, code, code]), lut)
        cv2.add(self._mean, cv2.multiply(diff, rate), dst=self._mean)
        cv2.accumulateWeighted(d2, self._var3, drift, cv2.compare(code, 0, cv2.CMP_EQ))
        # |mu|^2 with the mean, not once a second: the shadow test's distance from the colour's ray
        # is a small difference of large terms, and a stale |mu|^2 under a learned shadow spoils it
        self._mm = _norm2(self._mean)
        if forget is not None:
            self._refreshed = -np.inf  # the ghost's outline leaves the cached background grey too

    def _shadows(self, color, diff, d2, sigma2, fg) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The foreground pixels that are the floor in shadow, and those that are the floor lit up
        where the model learned a shadow (each uint8 0/255, or None if none).

        Three tests, each needed (Sanin, Sanderson & Lovell 2012, "Shadow detection: a survey and
        comparative evaluation of recent methods", found the texture tests the ones that keep
        objects whole):

        1. brightness: the pixel is the floor's colour scaled by alpha within ``shadow_ratio``,
           alpha = I.mu / |mu|^2 (the brightness distortion of Horprasert, Harwood & Davis 1999;
           Cucchiara et al. 2003 bound the V ratio of HSV the same way);
        2. chromaticity: it lies near the floor colour's ray, |I - alpha mu| small against alpha
           |mu| (Horprasert's chromaticity distortion; Cucchiara's hue and saturation test);
        3. texture: the mean-removed patch around it correlates with the floor's (normalised
           cross-correlation, Tian, Lu, Senior & Hampapur 2005), which a gain cannot change and
           a shirt of the floor's grey does not have. Only where the floor's patch varies well
           beyond the noise: on a flat floor nothing tells a shadow from grey clothes, and the
           pixel stays foreground.

        The same tests with the gain inverted, 1 / ``shadow_ratio``, find the floor where the model
        holds a shadow: a crowd walking through the learning window leaves the model its shadows
        (a shadow 0.7 m long covers a pixel for most of a second), and the floor they left looked
        lit up, foreground for as long as ``absorb_seconds`` takes; it is the floor, and is learned
        at once (see :meth:`_update`).

        The penumbra, the ramp of light at a soft shadow's edge, is darker than the floor by less
        than the band allows and its patches correlate less (the ramp is in them): next to a sure
        shadow (hysteresis, as Canny's edges) any gain between the band's and 1 is enough, with a
        weaker correlation. Only the bounding box of the foreground, then of the candidates, is
        examined.
        """
        x, y, w, h = cv2.boundingRect(fg)
        if not w:
            return None, None
        win = (slice(y, y + h), slice(x, x + w))
        # with p = (I - mu).mu, I.mu = |mu|^2 + p: alpha = 1 + p / |mu|^2, and the squared distance
        # from the floor colour's ray, |I|^2 - alpha I.mu, is d2 - p^2 / |mu|^2 (one 3-channel product)
        mm = self._mm[win]
        p = cv2.transform(cv2.multiply(diff[win], self._mean[win]), _ONES)
        q = cv2.divide(p, mm)  # alpha - 1
        lo, hi = self.shadow_ratio
        ramp = cv2.inRange(q, lo - 1.0, 1.0 / lo - 1.0)  # any gain a shadow, or its end, can make
        off_ray = cv2.subtract(d2[win], cv2.multiply(p, q))
        alpha = cv2.add(q, 1.0)
        allowed = cv2.scaleAdd(sigma2[win], CHROMA_NOISE_K2 / 3,
                               cv2.multiply(cv2.multiply(alpha, alpha), mm, scale=self.shadow_chroma**2))
        # the floor's patch, lit, must vary well beyond the noise: the model's where it is darker
        # (a shadow), the model's times alpha where lighter (the model holds a shadow, the frame the lit floor)
        lit = cv2.max(alpha, 1.0)
        # (inRange, not compare: OpenCV takes a 1 x 1 array beside a scalar for a scalar itself)
        textured = cv2.inRange(cv2.multiply(cv2.multiply(lit, lit), self._box_var[win]), self._texture_min, 3.0e38)
        floor_ray = cv2.bitwise_and(fg[win], cv2.compare(off_ray, allowed, cv2.CMP_LE))
        cand = cv2.bitwise_and(cv2.bitwise_and(floor_ray, ramp), textured)
        self._shaded = (cv2.bitwise_and(floor_ray, ramp), win)
        # sure: within the band, darker (a shadow) or lighter by its inverse (a shadow learned)
        band = cv2.bitwise_or(cv2.inRange(q, lo - 1.0, hi - 1.0), cv2.inRange(q, 1.0 / hi - 1.0, 1.0 / lo - 1.0))
        sure = cv2.bitwise_and(cand, band)
        cx, cy, cw, ch = cv2.boundingRect(sure)
        if not cw:
            return None, None
        # the texture test on the sure candidates' box, padded so the patches at its edge are
        # whole and the penumbra can grow out of it
        r = max(SHADOW_WINDOW // 2, SHADOW_GROW_PX)
        hh, ww = fg.shape
        x0, y0 = max(x + cx - r, 0), max(y + cy - r, 0)
        x1, y1 = min(x + cx + cw + r, ww), min(y + cy + ch + r, hh)
        box = (slice(y0, y1), slice(x0, x1))
        g = cv2.cvtColor(color[box], cv2.COLOR_BGR2GRAY).astype(np.float32)
        b = self._grey[box]
        size = (SHADOW_WINDOW, SHADOW_WINDOW)
        m_i = cv2.boxFilter(g, -1, size)
        v_i = cv2.subtract(cv2.boxFilter(cv2.multiply(g, g), -1, size), cv2.multiply(m_i, m_i))
        cov = cv2.subtract(cv2.boxFilter(cv2.multiply(g, b), -1, size), cv2.multiply(m_i, self._box_mean[box]))
        # ncc |ncc| = cov |cov| / (var_i var_b): no square root, and its sign kept
        q = cv2.divide(cv2.multiply(cov, cv2.absdiff(cov, 0)), cv2.multiply(v_i, self._box_var[box]))
        shadow = np.zeros_like(fg)
        shadow[win] = sure
        strong = cv2.bitwise_and(shadow[box], cv2.compare(q, self.shadow_ncc**2, cv2.CMP_GE))
        shadow[win] = cand
        # hysteresis, as Canny's edges: next to a sure one, the penumbra's weaker correlation (and
        # any gain of the ramp of light, see cand) is enough
        weak = cv2.bitwise_and(shadow[box], cv2.compare(q, (SHADOW_WEAK * self.shadow_ncc) ** 2, cv2.CMP_GE))
        for _ in range(SHADOW_GROW_PX):
            strong = cv2.bitwise_and(cv2.dilate(strong, _CROSS), weak)
        if not cv2.countNonZero(strong):
            return None, None
        # which is which: darker than the model, or lighter (the grey images are at hand)
        lighter = cv2.bitwise_and(strong, cv2.compare(g, b, cv2.CMP_GT))
        shadow[:] = 0
        shadow[box] = cv2.subtract(strong, lighter)
        relit = None
        if cv2.countNonZero(lighter):
            relit = np.zeros_like(fg)
            relit[box] = lighter
        return shadow, relit

    def shaded(self, blob: Blob) -> int:
        """How many of a blob's pixels (of the last frame's mask) have the floor's colour in shadow, or
        lit up against a shadow the model learned: darker or lighter by a gain from ``shadow_ratio``'s
        lower end to its inverse, whether or not the texture test then found them so (on a flat floor,
        at a penumbra's ramp of light, it cannot)."""
        if self._shaded is None:
            return 0
        shaded, (rows, cols) = self._shaded
        u, v, w, h = blob.bbox
        y0, x0 = max(v, rows.start), max(u, cols.start)
        y1, x1 = min(v + h, rows.stop), min(u + w, cols.stop)
        if y1 <= y0 or x1 <= x0:
            return 0
        inside = np.ascontiguousarray(blob.mask[y0 - v : y1 - v, x0 - u : x1 - u]).view(np.uint8)
        window = shaded[y0 - rows.start : y1 - rows.start, x0 - cols.start : x1 - cols.start]
        return cv2.countNonZero(cv2.bitwise_and(window, window, mask=inside))

    def is_ghost(self, color: np.ndarray, contours: list[np.ndarray]) -> bool:
        """Whether the region inside ``contours`` (int32 (K, 2) pixels) is a ghost: something the
        background learned that has gone (a bench moved away, someone who stood through the
        learning), not something there now.

        A thing that is there has its outline in the image; a ghost has it in the background
        alone. So the edge energy (Sobel) along the outline is compared between the frame and the
        background, as Tian, Feris & Hampapur 2008 tell removed from abandoned objects ("ghost"
        is Cucchiara et al. 2003's name for them).
        """
        if self._mean is None or not contours:
            return False
        pts = np.concatenate(contours)
        x, y, w, h = cv2.boundingRect(pts)
        hh, ww = color.shape[:2]
        x0, y0, x1, y1 = max(x - 3, 0), max(y - 3, 0), min(x + w + 3, ww), min(y + h + 3, hh)
        ring = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.drawContours(ring, [(c - (x0, y0)).astype(np.int32).reshape(-1, 1, 2) for c in contours], -1, 255, 3)
        # the image's own border is no outline: a body cut by it has no edge there in either
        ring[:, [0, -1]] = 0
        ring[[0, -1], :] = 0
        if not ring.any():
            return False
        g = cv2.cvtColor(color[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).astype(np.float32)
        now, then = (_edge_energy(im, ring) for im in (g, self._grey[y0:y1, x0:x1]))
        return then > GHOST_MIN_EDGE and now < GHOST_EDGE_RATIO * then


def _edge_energy(grey: np.ndarray, ring: np.ndarray) -> float:
    """Mean Sobel gradient magnitude (L1) of ``grey`` on the pixels of ``ring``, after a blur that
    takes the floor's fine texture out (its gradients would drown a body's outline) and leaves
    the step from a body to the floor."""
    grey = cv2.GaussianBlur(grey, (0, 0), GHOST_BLUR_PX)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return float(cv2.mean(cv2.add(cv2.absdiff(gx, 0), cv2.absdiff(gy, 0)), ring)[0])
