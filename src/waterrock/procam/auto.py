"""The calibration sequence: exposure, Gray code, solve, reference dots; and the self-check.

It drives a rig, anything with ``show(output, image)`` (None: black), ``grab()`` (the camera's
grey frame of what is shown now) and ``depth()`` (its depth image in millimetres, or None):
the simulated rig of ``procam/rig.py``, or the venue's outputs and camera
(``app/calibrate_auto.py``). All outputs but the one being calibrated show black.
"""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
import trimesh

from waterrock.procam import check, graycode
from waterrock.procam.model import OutputCalibration, Pinhole, ProcamCalibration
from waterrock.procam.solve import (
    CalibrationError,
    Correspondences,
    block_correspondences,
    rock_points,
    solve_camera_pose,
    solve_projector,
)

log = logging.getLogger(__name__)

SATURATED = 250  # 8-bit levels from which a camera pixel is taken as clipped
MAX_SATURATED = 0.02  # share of the lit pixels that may clip in the white frame
MIN_LIT = 0.005  # share of the camera's pixels an output must light
ENOUGH_PAIRS = 2000  # correspondences (camera blocks) that make a well-fixed projector
MAX_COARSE = 2  # the finest bit planes a decode may give up where the camera cannot resolve them


class Rig(Protocol):
    def show(self, index: int, image: np.ndarray | None) -> None: ...

    def grab(self) -> np.ndarray: ...

    def depth(self) -> np.ndarray | None: ...


class ExposureError(CalibrationError):
    """The camera sees an output's patterns too bright or too dark to decode."""


def check_exposure(white: np.ndarray, black: np.ndarray, output: int) -> float:
    """The share of the camera's pixels that ``output`` lights; ExposureError naming the fault
    when the white frame clips or the output lights too little to decode."""
    lit = (white.astype(np.int16) - black.astype(np.int16)) > graycode.BLACK_THRESHOLD
    share = float(lit.mean())
    clipped = float((white[lit] >= SATURATED).mean()) if lit.any() else 0.0
    if clipped > MAX_SATURATED:
        raise ExposureError(
            f"output {output}: the white pattern saturates the camera: {100 * clipped:.1f} % of the pixels it lights "
            f"read {SATURATED}-255 (at most {100 * MAX_SATURATED:.0f} % may): lower the camera's exposure or gain")
    if share < MIN_LIT:
        brightest = int((white.astype(np.int16) - black.astype(np.int16)).max())
        raise ExposureError(
            f"output {output}: the white pattern is too dark for the camera: {100 * share:.2f} % of its pixels "
            f"are brighter than under black by more than {graycode.BLACK_THRESHOLD} levels (at least "
            f"{100 * MIN_LIT:.1f} % must be; the largest difference is {brightest}): raise the camera's exposure "
            f"or gain, or aim the output at the rock in the camera's view")
    return share


def _show_grab(rig: Rig, output: int, image: np.ndarray | None) -> np.ndarray:
    rig.show(output, image)
    frame = np.asarray(rig.grab())
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame


def capture_white_black(rig: Rig, output: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    white, black = graycode.white_black(size)
    w = _show_grab(rig, output, white)
    b = _show_grab(rig, output, black)
    return w, b


def capture_gray_code(rig: Rig, output: int, size: tuple[int, int]) -> tuple[graycode.Decoded, np.ndarray]:
    """Exposure first (ExposureError names the fault), then the patterns: their decode, and the
    camera's frame of the white pattern."""
    white, black = capture_white_black(rig, output, size)
    check_exposure(white, black, output)
    captures = [_show_grab(rig, output, p) for p in graycode.patterns(size)]
    rig.show(output, None)
    return decode_adaptive(captures, white, black, size), white


def decode_adaptive(captures, white, black, size, enough: int = ENOUGH_PAIRS) -> graycode.Decoded:
    """The full decode where it gives ``enough`` pairs; else one that lets trusted pixels lose
    their finest bit plane, then two (a projector whose pixels are smaller than the camera's:
    every such pair is a little less precise, so the full decode is preferred)."""
    best = None
    for coarse in range(MAX_COARSE + 1):
        decoded = graycode.decode(captures, white, black, size, coarse=coarse)
        pairs = len(block_correspondences(decoded).camera)
        if best is None or pairs > best[0]:
            best = (pairs, decoded)
        if pairs >= enough:
            break
    if best[1].coarse:
        log.info("the camera resolves the finest stripes of this output in too few places: %d of its bit planes "
                 "are left to the coarser ones", best[1].coarse)
    return best[1]


def capture_dots(rig: Rig, output: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dot pattern, its dots, and the camera's frames of it and of black."""
    image, dots = check.dot_pattern(size)
    on = _show_grab(rig, output, image)
    off = _show_grab(rig, output, None)
    return dots, on, off


@dataclass
class OutputResult:
    output: int
    decoded: graycode.Decoded
    pairs: Correspondences
    points: np.ndarray
    errors: np.ndarray
    white: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Result:
    calibration: ProcamCalibration
    outputs: list[OutputResult]
    camera_rms_m: float


def calibrate(rig: Rig, sizes: dict[int, tuple[int, int]], mesh: trimesh.Trimesh, camera_guess: Pinhole,
              depth: np.ndarray | None = None) -> Result:
    """Calibrate the camera's pose (from its depth image and the rock) and each output in
    ``sizes`` (output index -> its pixels). ``camera_guess``: the camera's lens and a rough pose
    (the tracker's calibration). Raises CalibrationError naming the output and the fault."""
    for i in sizes:
        rig.show(i, None)
    t0 = time.perf_counter()
    depth = rig.depth() if depth is None else depth
    if depth is None:
        raise CalibrationError("the camera gives no depth image: the camera's pose on the rock is solved from "
                               "its depth, so calibrate with a depth camera (RealSense, Kinect, or a recording)")
    pose = solve_camera_pose(camera_guess, depth, mesh)
    camera = pose.camera
    log.info("camera pose: %d depth points on the rock, %.1f mm RMS, %.2f s", pose.inliers, 1000 * pose.rms_m,
             time.perf_counter() - t0)
    results, outputs = [], {}
    for i, size in sizes.items():
        t = {"start": time.perf_counter()}
        decoded, white = capture_gray_code(rig, i, size)
        t["captured"] = time.perf_counter()
        pairs = block_correspondences(decoded)
        points = rock_points(camera, pairs.camera, mesh)
        t["points"] = time.perf_counter()
        fit = solve_projector(points, pairs.projector, size, what=f"output {i}")
        t["solved"] = time.perf_counter()
        dots, on, off = capture_dots(rig, i, size)
        seen = np.all(np.isfinite(points), axis=1)
        dots, near = check.expected_dots(dots, pairs.camera[seen], pairs.projector[seen])
        found = check.find_dots(on, off, near)
        ok = np.all(np.isfinite(found), axis=1)
        outputs[i] = OutputCalibration(fit.projector, fit.rms_px, dots[ok], found[ok])
        results.append(OutputResult(i, decoded, pairs, points, fit.errors, white, {
            "capture_s": t["captured"] - t["start"], "points_s": t["points"] - t["captured"],
            "solve_s": t["solved"] - t["points"]}))
        log.info("output %d: %d pairs, reprojection %.3f px RMS, %d reference dots", i, len(pairs.camera),
                 fit.rms_px, int(ok.sum()))
        rig.show(i, None)
    cal = ProcamCalibration(camera, outputs, datetime.datetime.now().isoformat(timespec="seconds"))
    return Result(cal, results, pose.rms_m)


def self_check(rig: Rig, cal: ProcamCalibration, sizes: dict[int, tuple[int, int]] | None = None) -> list[check.Drift]:
    """Each calibrated output's drift since its calibration (projector pixels)."""
    report = []
    for i, out in sorted(cal.outputs.items()):
        size = out.projector.size if sizes is None else sizes.get(i, out.projector.size)
        for j in cal.outputs:
            rig.show(j, None)
        _, on, off = capture_dots(rig, i, size)
        now = check.find_dots(on, off, out.dots_camera)
        report.append(check.measure_drift(i, out.dots_projector, out.dots_camera, now))
    return report


def residual_picture(result: OutputResult, image: np.ndarray | None = None, scale_px: float = 1.0) -> np.ndarray:
    """The camera's view with each block of rock coloured by its reprojection error (blue 0 px
    to red ``scale_px`` or more; mid grey: left out as an outlier), and a legend: BGR uint8.
    What the output lit but the decode could not trust (stripes finer than the camera resolves,
    grazing light) shows as the dimmed white frame."""
    base = result.decoded.valid.astype(np.uint8) * 255 if image is None else image
    base = cv2.cvtColor(base, cv2.COLOR_GRAY2BGR) if base.ndim == 2 else base.copy()
    base = (base * 0.45).astype(np.uint8)  # what was lit but not decoded stays grey
    err = result.errors
    level = np.clip(np.nan_to_num(err, nan=0.0) / scale_px * 255.0, 0, 255).astype(np.uint8)
    colours = cv2.applyColorMap(level.reshape(-1, 1), cv2.COLORMAP_TURBO).reshape(-1, 3)
    colours[~np.isfinite(err)] = (128, 128, 128)
    block = 4
    corner = np.rint(result.pairs.camera - (block - 1) / 2).astype(np.int64)
    step = np.arange(block)
    ys = np.clip(corner[:, 1, None, None] + step[None, :, None], 0, base.shape[0] - 1)
    xs = np.clip(corner[:, 0, None, None] + step[None, None, :], 0, base.shape[1] - 1)
    base[ys, xs] = colours[:, None, None, :]
    ramp = cv2.applyColorMap(np.linspace(0, 255, 200).astype(np.uint8).reshape(1, -1).repeat(12, 0),
                             cv2.COLORMAP_TURBO)
    h = base.shape[0]
    base[h - 30 : h - 18, 10:210] = ramp
    cv2.putText(base, f"output {result.output}: reprojection error 0 .. {scale_px:g}+ px (dim: not decoded)",
                (10, h - 36),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return base
