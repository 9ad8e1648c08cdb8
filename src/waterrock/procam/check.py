"""The self-check: how far each output has drifted since it was calibrated, in projector pixels.

A projector on a truss creeps as the venue warms and cools, and a camera can be knocked. Once
calibrated, each output shows a sparse grid of dots and the camera's centroids of those dots
are kept as the reference. A check shows the same dots again: each dot's move in the camera
is taken back into projector pixels through the local affine map that its neighbouring dots
give (camera to projector, fitted on the reference), and the output's drift is the median
over the dots the camera finds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

DOT_SPACING = 32  # projector pixels between dots
DOT_SIGMA = 1.6  # projector pixels: a dot's Gaussian radius
MIN_DOTS = 4  # dots a drift is measured on (each affine fit needs its neighbours)
WINDOW = 7  # camera pixels each side of a dot's expected place that its centroid is looked for in


def dot_pattern(size: tuple[int, int], spacing: int = DOT_SPACING, sigma: float = DOT_SIGMA
                ) -> tuple[np.ndarray, np.ndarray]:
    """The sparse pattern of an output of ``size``: (h, w) uint8 with Gaussian dots on a grid,
    and the dots' projector pixels (N, 2)."""
    w, h = size
    xs = np.arange(spacing // 2, w - spacing // 4, spacing, dtype=np.float64)
    ys = np.arange(spacing // 2, h - spacing // 4, spacing, dtype=np.float64)
    dots = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    # each pixel takes the one dot nearest it: the grid's cell
    px, py = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
    gx = np.exp(-0.5 * ((px[None, :] - xs[:, None]) / sigma) ** 2).max(axis=0)
    gy = np.exp(-0.5 * ((py[None, :] - ys[:, None]) / sigma) ** 2).max(axis=0)
    image = np.rint(255.0 * np.outer(gy, gx)).astype(np.uint8)
    return image, dots


def find_dots(on: np.ndarray, off: np.ndarray, expected: np.ndarray, window: int = WINDOW,
              min_peak: float = 20.0) -> np.ndarray:
    """The centroids of the dots in the camera's frame ``on`` (``off``: the same view showing
    black), each looked for within ``window`` pixels of its ``expected`` camera pixel: (N, 2),
    NaN where the peak is under ``min_peak`` levels (the dot is not in view, or occluded)."""
    diff = np.clip(np.asarray(on, np.float64) - np.asarray(off, np.float64), 0.0, None)
    h, w = diff.shape
    centre = np.rint(np.asarray(expected, np.float64)).astype(np.int64)
    offs = np.arange(-window, window + 1)
    ys = np.clip(centre[:, 1, None, None] + offs[None, :, None], 0, h - 1)
    xs = np.clip(centre[:, 0, None, None] + offs[None, None, :], 0, w - 1)
    patch = diff[ys, xs]  # (N, 2w+1, 2w+1)
    peak = patch.max(axis=(1, 2))
    weight = np.clip(patch - 0.3 * peak[:, None, None], 0.0, None)  # the dot, not the floor around it
    total = weight.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (weight * xs).sum(axis=(1, 2)) / total
        cy = (weight * ys).sum(axis=(1, 2)) / total
    found = (peak >= min_peak) & (total > 0)
    out = np.column_stack([cx, cy])
    out[~found] = np.nan
    return out


def expected_dots(dots: np.ndarray, camera_px: np.ndarray, projector_px: np.ndarray, radius: float = 3.0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Where the camera should see each dot, from the calibration's correspondences (camera and
    projector pixel pairs): the camera pixel of the nearest pair within ``radius`` projector
    pixels. Returns the dots that have one, and their camera pixels."""
    dist, idx = cKDTree(projector_px).query(dots, distance_upper_bound=radius)
    ok = np.isfinite(dist)
    return dots[ok], camera_px[idx[ok]]


def _local_affines(camera: np.ndarray, projector: np.ndarray, neighbours: int = 8) -> np.ndarray:
    """For each reference dot, the 2x2 linear part of the affine map camera -> projector fitted
    on it and its nearest neighbours: (N, 2, 2)."""
    k = min(neighbours, len(camera))
    _, idx = cKDTree(camera).query(camera, k=k)
    c = camera[idx] - camera[:, None, :]
    p = projector[idx] - projector[:, None, :]
    design = np.concatenate([c, np.ones(c.shape[:2] + (1,))], axis=2)  # (N, k, 3)
    ata = np.einsum("nki,nkj->nij", design, design)
    atb = np.einsum("nki,nkj->nij", design, p)
    coef = np.linalg.solve(ata + 1e-9 * np.eye(3), atb)  # (N, 3, 2)
    return np.swapaxes(coef[:, :2, :], 1, 2)


@dataclass(frozen=True)
class Drift:
    """One output's drift: the median and 95th percentile of its dots' moves (projector pixels),
    and how many of its reference dots the camera found."""

    output: int
    median_px: float
    p95_px: float
    found: int
    total: int

    @property
    def measured(self) -> bool:
        return bool(np.isfinite(self.median_px))

    def describe(self, warn_px: float | None = None) -> str:
        if not self.measured:
            return (f"output {self.output}: drift not measured: the camera found {self.found} of its {self.total} "
                    f"reference dots (at least {MIN_DOTS} and a quarter are needed): is the output on, and the "
                    f"camera where it was?")
        over = "" if warn_px is None or self.median_px <= warn_px else f" (over the scene's {warn_px:g} px)"
        return (f"output {self.output}: drift {self.median_px:.2f} px median, {self.p95_px:.2f} px p95{over}, "
                f"{self.found} of {self.total} dots found")


def measure_drift(output: int, dots_projector: np.ndarray, dots_camera: np.ndarray, now_camera: np.ndarray
                  ) -> Drift:
    """The drift of an output whose reference dots were at ``dots_camera`` and are now at
    ``now_camera`` (NaN: not found)."""
    total = len(dots_camera)
    found = np.all(np.isfinite(now_camera), axis=1) if total else np.zeros(0, bool)
    if total < MIN_DOTS or found.sum() < max(MIN_DOTS, total // 4):
        return Drift(output, float("nan"), float("nan"), int(found.sum()), total)
    affine = _local_affines(dots_camera, dots_projector)
    move = np.einsum("nij,nj->ni", affine[found], now_camera[found] - dots_camera[found])
    size = np.linalg.norm(move, axis=1)
    return Drift(output, float(np.median(size)), float(np.percentile(size, 95)), int(found.sum()), total)
