"""The pinhole device: a camera or a projector (a projector is a camera that emits).

OpenCV's model and conventions throughout (Zhang 2000; Heikkila & Silven 1997 for distortion):
a scene point X is in the device's frame at ``x = R X + t`` (x right, y down, z forward), and
lands on pixel ``K distort(x / z)``, pixel (0, 0) being the centre of the top-left pixel.
Scene coordinates are the scene's (metres, y up).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from waterrock import files
from waterrock.tracking.calibrate import look_at_rotation


@dataclass(frozen=True)
class Pinhole:
    """A device of ``size`` (w, h) pixels: intrinsics ``K`` (3x3), distortion ``dist``
    (k1, k2, p1, p2, k3), world-to-device rotation ``R`` and translation ``t``."""

    size: tuple[int, int]
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    dist: np.ndarray = field(default_factory=lambda: np.zeros(5))

    def __post_init__(self) -> None:
        for name, shape in (("K", (3, 3)), ("R", (3, 3)), ("t", (3,)), ("dist", (5,))):
            a = np.asarray(getattr(self, name), np.float64)
            if name == "dist":
                a = np.pad(a.ravel(), (0, max(0, 5 - a.size)))[:5]
            a = a.reshape(shape)
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{name} has a NaN or an infinity: {a.tolist()}")
            object.__setattr__(self, name, a)
        w, h = self.size
        if w < 2 or h < 2:
            raise ValueError(f"size {self.size} must be at least 2 x 2 pixels")
        object.__setattr__(self, "size", (int(w), int(h)))
        if not np.allclose(self.R @ self.R.T, np.eye(3), atol=1e-6) or np.linalg.det(self.R) < 0:
            raise ValueError("R must be a proper rotation (orthonormal, det +1)")

    @classmethod
    def looking_at(cls, size, hfov_deg: float, eye, target, up=(0.0, 1.0, 0.0), shift=(0.0, 0.0),
                   dist=(0.0, 0.0, 0.0, 0.0, 0.0)) -> Pinhole:
        """A device at ``eye`` looking at ``target`` with a horizontal field of view; ``shift``
        moves the principal point by shares of the width and height (a projector's lens shift)."""
        w, h = size
        f = 0.5 * w / np.tan(np.radians(hfov_deg) / 2)
        K = np.array([[f, 0, (w - 1) / 2 + shift[0] * w], [0, f, (h - 1) / 2 + shift[1] * h], [0, 0, 1]])
        R = look_at_rotation(eye, target, up).T  # the tracker's camera-to-scene, turned world-to-device
        return cls((w, h), K, R, -R @ np.asarray(eye, np.float64), np.asarray(dist, np.float64))

    @property
    def centre(self) -> np.ndarray:
        """The device's optical centre in the scene."""
        return -self.R.T @ self.t

    def to_device(self, points) -> np.ndarray:
        return np.asarray(points, np.float64).reshape(-1, 3) @ self.R.T + self.t

    def project(self, points) -> np.ndarray:
        """(N, 2) pixels of scene points (NaN behind the device)."""
        x = self.to_device(points)
        behind = x[:, 2] <= 1e-9
        x[behind, 2] = 1.0
        px, _ = cv2.projectPoints(x[:, None], np.zeros(3), np.zeros(3), self.K, self.dist)
        px = px.reshape(-1, 2)
        px[behind] = np.nan
        return px

    def undistort(self, pixels) -> np.ndarray:
        """Distorted pixels to the normalised image plane (x/z, y/z): (N, 2)."""
        p = np.asarray(pixels, np.float64).reshape(-1, 1, 2)
        crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-10)
        return cv2.undistortPointsIter(p, self.K, self.dist, None, None, crit).reshape(-1, 2)

    def rays(self, pixels) -> np.ndarray:
        """Unit scene-frame directions of the rays through ``pixels``: (N, 3)."""
        n = self.undistort(pixels)
        d = np.column_stack([n, np.ones(len(n))]) @ self.R  # R^T applied to each row
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    def gl_matrix(self, near: float, far: float) -> np.ndarray:
        """World to clip (4x4, row-major, acts on column vectors) for drawing what this device
        sees with OpenGL, distortion left out: NDC y = +1 is the image's top row, and the pixel
        centres of K fall on the framebuffer's pixel centres."""
        w, h = self.size
        K = self.K
        proj = np.zeros((4, 4))
        proj[0, 0], proj[0, 1], proj[0, 2] = 2 * K[0, 0] / w, 2 * K[0, 1] / w, 2 * (K[0, 2] + 0.5) / w - 1
        proj[1, 1], proj[1, 2] = -2 * K[1, 1] / h, 1 - 2 * (K[1, 2] + 0.5) / h
        proj[2, 2], proj[2, 3] = (far + near) / (far - near), -2 * far * near / (far - near)
        proj[3, 2] = 1.0
        view = np.eye(4)
        view[:3, :3], view[:3, 3] = self.R, self.t
        return proj @ view

    def resized(self, size: tuple[int, int]) -> Pinhole:
        """The same device drawn into ``size`` (w, h) pixels instead of its own (a supersampled
        render, a window in a scaled mode of the projector): its whole frame onto the whole
        frame, K scaled per axis with the pixel centres kept; the distortion, on normalised
        coordinates, is unchanged."""
        w, h = int(size[0]), int(size[1])
        if (w, h) == self.size:
            return self
        sx, sy = w / self.size[0], h / self.size[1]
        K = self.K.copy()
        K[0, 0], K[0, 1], K[1, 1] = K[0, 0] * sx, K[0, 1] * sx, K[1, 1] * sy
        K[0, 2], K[1, 2] = (K[0, 2] + 0.5) * sx - 0.5, (K[1, 2] + 0.5) * sy - 0.5
        return Pinhole((w, h), K, self.R, self.t, self.dist)

    def moved(self, pixels=(0.0, 0.0)) -> Pinhole:
        """The same device with its picture shifted by ``pixels`` (dx, dy): a projector nudged."""
        K = self.K.copy()
        K[0, 2] += pixels[0]
        K[1, 2] += pixels[1]
        return Pinhole(self.size, K, self.R, self.t, self.dist)

    def to_dict(self) -> dict:
        return {"size": list(self.size), "K": self.K.tolist(), "dist": self.dist.tolist(),
                "R": self.R.tolist(), "t": self.t.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Pinhole:
        return cls(tuple(d["size"]), np.array(d["K"]), np.array(d["R"]), np.array(d["t"]), np.array(d["dist"]))


@dataclass(frozen=True)
class OutputCalibration:
    """One output's calibrated projector, how well it fits (RMS reprojection error, pixels), and
    its self-check reference: the sparse pattern's dots (projector pixels) and where the camera
    saw them (camera pixels) when it was calibrated."""

    projector: Pinhole
    rms_px: float
    dots_projector: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    dots_camera: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    def to_dict(self) -> dict:
        return {"projector": self.projector.to_dict(), "rms_px": self.rms_px,
                "dots_projector": np.asarray(self.dots_projector).tolist(),
                "dots_camera": np.asarray(self.dots_camera).tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> OutputCalibration:
        return cls(Pinhole.from_dict(d["projector"]), float(d["rms_px"]),
                   np.asarray(d.get("dots_projector", []), np.float64).reshape(-1, 2),
                   np.asarray(d.get("dots_camera", []), np.float64).reshape(-1, 2))


@dataclass(frozen=True)
class ProcamCalibration:
    """What ``waterrock calibrate --auto`` writes beside the scene: the camera's pose in the
    scene and each output's projector, keyed by output index."""

    camera: Pinhole
    outputs: dict[int, OutputCalibration]
    created: str = ""

    kind = "procam"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "created": self.created, "camera": self.camera.to_dict(),
                "outputs": {str(i): o.to_dict() for i, o in sorted(self.outputs.items())}}

    @classmethod
    def from_dict(cls, d: dict) -> ProcamCalibration:
        if not isinstance(d, dict) or d.get("kind") != cls.kind:
            got = d.get("kind") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"not a projector calibration (kind {got!r}, expected {cls.kind!r})")
        return cls(Pinhole.from_dict(d["camera"]),
                   {int(i): OutputCalibration.from_dict(o) for i, o in d["outputs"].items()},
                   str(d.get("created", "")))


def default_procam_path(scene_path) -> Path:
    """Where a scene's projector calibration lives: ``<scene>.procam.json`` beside it."""
    p = Path(scene_path)
    return p.with_name(p.stem + ".procam.json")


def save_procam(cal: ProcamCalibration, path) -> Path:
    """Write ``cal`` atomically (a temporary and a rename); an older calibration at ``path`` is
    kept as ``<name>.previous.json``, so a bad run can be undone by renaming it back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        files.write_bytes(path.with_name(path.name.removesuffix(".json") + ".previous.json"), path.read_bytes())
    return files.write_json(path, cal.to_dict())


def load_procam(path) -> ProcamCalibration:
    """The projector calibration in ``path``; FileNotFoundError or ValueError naming the file."""
    path = Path(path)
    try:
        return ProcamCalibration.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: projector calibration not found (run `waterrock calibrate --auto`)") from None
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a usable projector calibration: missing or malformed {err}") from None
    except files.UNREADABLE as err:
        raise ValueError(f"{path}: not a usable projector calibration: {files.describe_error(err)}") from None


def scene_procam_path(scene) -> Path | None:
    """The projector calibration a scene's outputs use: ``[projection] calibration``, else
    ``<scene>.procam.json`` beside the scene when it exists; None when there is none or the
    scene sets ``on_rock = false``."""
    p = scene.projection
    if not p.on_rock:
        return None
    if p.calibration is not None:
        return p.calibration
    if scene.path is None:
        return None
    default = default_procam_path(scene.path)
    return default if default.is_file() else None
