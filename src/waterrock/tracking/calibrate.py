"""Calibration: sensor pixels to scene metres (y up), saved beside the scene as JSON.

Two models, as a venue has one or the other:

- :class:`DepthCalibration`, a pinhole depth camera: intrinsics (fx, fy, cx, cy) and the rigid
  transform camera -> scene (p_scene = R p_cam + t), camera axes as OpenCV has them (x right,
  y down, z forward). Solved from three or more pixels whose depth and scene point are known
  (Kabsch), or taken from a sensor's factory intrinsics and a measured pose.
- :class:`FloorHomography`, a colour camera looking at a floor or rock plane: a homography
  from image pixels to the plane's (x, z) coordinates at height ``floor_y``, from four or more
  point pairs (cv2.findHomography).

The interactive tool (:func:`calibrate_command`) only collects the point pairs; the math is
here in plain functions so that it is fully tested.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from waterrock import files


@dataclass(frozen=True)
class Intrinsics:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> Intrinsics:
        f = 0.5 * width / np.tan(np.radians(hfov_deg) / 2)
        return cls(width, height, f, f, (width - 1) / 2, (height - 1) / 2)

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], np.float64)

    def rays(self) -> np.ndarray:
        """(H, W, 3) camera-frame rays scaled to z = 1: a pixel at depth d sees d * ray."""
        u = (np.arange(self.width) - self.cx) / self.fx
        v = (np.arange(self.height) - self.cy) / self.fy
        uu, vv = np.meshgrid(u, v)
        return np.stack([uu, vv, np.ones_like(uu)], axis=-1)

    def scaled(self, width: int, height: int) -> Intrinsics:
        sx, sy = width / self.width, height / self.height
        return Intrinsics(
            width, height, self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5
        )


def look_at_rotation(eye, target, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """Camera-to-scene rotation (columns: the camera's x, y, z in the scene) of a camera at
    ``eye`` looking at ``target``, image 'up' (-y) as close to ``up`` as it can be."""
    eye, target, up = (np.asarray(x, np.float64) for x in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)  # OpenCV: x right, y down, z forward
    if np.linalg.norm(x) < 1e-9:  # looking straight along up: pick image-down = +z in the scene
        x = np.cross(z, (0.0, 0.0, -1.0)) if abs(z[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


@dataclass(frozen=True)
class DepthCalibration:
    intrinsics: Intrinsics
    rotation: np.ndarray  # (3, 3) camera -> scene
    translation: np.ndarray  # (3,) the camera's centre in the scene

    kind = "depth"

    def __post_init__(self) -> None:
        r = np.asarray(self.rotation, np.float64).reshape(3, 3)
        if not np.allclose(r @ r.T, np.eye(3), atol=1e-6) or np.linalg.det(r) < 0:
            raise ValueError("rotation must be a proper rotation matrix (orthonormal, det +1)")
        object.__setattr__(self, "rotation", r)
        object.__setattr__(self, "translation", np.asarray(self.translation, np.float64).reshape(3))

    @classmethod
    def look_at(cls, intrinsics: Intrinsics, eye, target, up=(0.0, 1.0, 0.0)) -> DepthCalibration:
        """A camera at ``eye`` looking at ``target``; image 'up' as close to ``up`` as it can be."""
        return cls(intrinsics, look_at_rotation(eye, target, up), np.asarray(eye, np.float64))

    def rays_world(self) -> np.ndarray:
        """(H, W, 3) scene-frame rays: the pixel at depth d (metres) sees t + d * ray."""
        return self.intrinsics.rays() @ self.rotation.T

    def pixel_to_world(self, uv, depth_m) -> np.ndarray:
        uv = np.atleast_2d(np.asarray(uv, np.float64))
        d = np.asarray(depth_m, np.float64).reshape(-1, 1)
        k = self.intrinsics
        cam = np.column_stack([(uv[:, 0] - k.cx) / k.fx, (uv[:, 1] - k.cy) / k.fy, np.ones(len(uv))]) * d
        return cam @ self.rotation.T + self.translation

    def world_to_pixel(self, points) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (N, 2) and depths (N,) in metres of scene points."""
        cam = (np.atleast_2d(np.asarray(points, np.float64)) - self.translation) @ self.rotation
        k = self.intrinsics
        z = cam[:, 2]
        return np.column_stack([k.fx * cam[:, 0] / z + k.cx, k.fy * cam[:, 1] / z + k.cy]), z

    def to_dict(self) -> dict:
        k = self.intrinsics
        return {
            "kind": self.kind,
            "intrinsics": {
                "width": k.width,
                "height": k.height,
                "fx": k.fx,
                "fy": k.fy,
                "cx": k.cx,
                "cy": k.cy,
            },
            "rotation": self.rotation.tolist(),
            "translation": self.translation.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> DepthCalibration:
        return cls(Intrinsics(**d["intrinsics"]), np.array(d["rotation"]), np.array(d["translation"]))


@dataclass(frozen=True)
class FloorHomography:
    """Image pixels <-> points (x, floor_y, z) on a horizontal plane of the scene."""

    matrix: np.ndarray  # (3, 3) pixel (u, v, 1) -> plane (x, z, 1), up to scale
    floor_y: float = 0.0
    width: int = 0
    height: int = 0

    kind = "floor_homography"

    def __post_init__(self) -> None:
        h = np.asarray(self.matrix, np.float64).reshape(3, 3)
        if abs(np.linalg.det(h)) < 1e-12:
            raise ValueError("homography is singular: are three of the points on one line?")
        object.__setattr__(self, "matrix", h / h[2, 2])

    @classmethod
    def from_points(
        cls, image_points, world_points, floor_y: float | None = None, width: int = 0, height: int = 0
    ) -> FloorHomography:
        """From four or more pairs; world points are (x, z) or (x, y, z) on the plane."""
        img = np.asarray(image_points, np.float64).reshape(-1, 2)
        w = np.asarray(world_points, np.float64)
        if w.shape[-1] == 3:
            floor_y = float(np.mean(w[:, 1])) if floor_y is None else floor_y
            w = w[:, [0, 2]]
        w = w.reshape(-1, 2)
        if len(img) < 4 or len(img) != len(w):
            raise ValueError(f"a homography needs four or more point pairs, got {len(img)} and {len(w)}")
        # method 0: least squares over all points; clicks are few and hand-checked, no outliers
        h, _ = cv2.findHomography(img, w, 0)
        if h is None:
            raise ValueError("cv2.findHomography found no solution: are three of the points on one line?")
        return cls(h, 0.0 if floor_y is None else floor_y, width, height)

    @classmethod
    def from_image_size(
        cls, width: int, height: int, width_m: float, floor_y: float = 0.0
    ) -> FloorHomography:
        """No calibration yet: the image, seen from straight above, spans ``width_m`` centred on 0."""
        s = width_m / width
        h = np.array([[s, 0, -s * width / 2], [0, s, -s * height / 2], [0, 0, 1]])
        return cls(h, floor_y, width, height)

    def pixel_to_world(self, uv) -> np.ndarray:
        uv = np.atleast_2d(np.asarray(uv, np.float64))
        if not uv.size:
            return np.zeros((0, 3))
        xz = cv2.perspectiveTransform(uv.reshape(-1, 1, 2), self.matrix).reshape(-1, 2)
        return np.column_stack([xz[:, 0], np.full(len(xz), self.floor_y), xz[:, 1]])

    def world_to_pixel(self, points) -> np.ndarray:
        p = np.atleast_2d(np.asarray(points, np.float64))
        xz = p[:, [0, 2]] if p.shape[1] == 3 else p
        if not len(xz):
            return np.zeros((0, 2))
        inv = np.linalg.inv(self.matrix)
        return cv2.perspectiveTransform(xz.reshape(-1, 1, 2), inv).reshape(-1, 2)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "matrix": self.matrix.tolist(),
            "floor_y": self.floor_y,
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_dict(cls, d: dict) -> FloorHomography:
        return cls(np.array(d["matrix"]), d.get("floor_y", 0.0), d.get("width", 0), d.get("height", 0))


Calibration = DepthCalibration | FloorHomography


def solve_rigid(cam_points, world_points) -> tuple[np.ndarray, np.ndarray]:
    """R, t minimising sum |R c + t - w|^2 (Kabsch 1976, with the reflection fix)."""
    c = np.asarray(cam_points, np.float64).reshape(-1, 3)
    w = np.asarray(world_points, np.float64).reshape(-1, 3)
    if len(c) < 3 or len(c) != len(w):
        raise ValueError(f"a rigid transform needs three or more point pairs, got {len(c)} and {len(w)}")
    cc, wc = c.mean(0), w.mean(0)
    u, s, vt = np.linalg.svd((c - cc).T @ (w - wc))
    if s[1] < 1e-9 * max(s[0], 1e-12):
        raise ValueError("the calibration points are on one line: the pose is not determined")
    dfix = np.diag([1.0, 1.0, np.sign(np.linalg.det(vt.T @ u.T))])
    r = vt.T @ dfix @ u.T
    return r, wc - r @ cc


def solve_depth_calibration(intrinsics: Intrinsics, image_points, depths_m, world_points) -> DepthCalibration:
    """The camera's pose from pixels with known depth (metres) and their scene points."""
    uv = np.asarray(image_points, np.float64).reshape(-1, 2)
    d = np.asarray(depths_m, np.float64).reshape(-1)
    k = intrinsics
    cam = np.column_stack([(uv[:, 0] - k.cx) / k.fx, (uv[:, 1] - k.cy) / k.fy, np.ones(len(uv))]) * d[:, None]
    r, t = solve_rigid(cam, world_points)
    return DepthCalibration(intrinsics, r, t)


def save_calibration(cal: Calibration, path: str | Path) -> Path:
    """Write ``cal`` as JSON through a temporary and a rename: written in place, a full disk or
    a power cut during the save left half a file and the tracker without a calibration."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return files.write_json(path, cal.to_dict())


def load_calibration(path: str | Path) -> Calibration:
    """The calibration in ``path``; FileNotFoundError or ValueError naming the file otherwise."""
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        kind = d.get("kind") if isinstance(d, dict) else None
        if kind == DepthCalibration.kind:
            return DepthCalibration.from_dict(d)
        if kind == FloorHomography.kind:
            return FloorHomography.from_dict(d)
        raise ValueError(f"unknown calibration kind {kind!r}")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: calibration file not found (run `waterrock calibrate`)") from None
    except files.UNREADABLE as err:  # torn, empty, a folder, or not a calibration at all
        raise ValueError(f"{path}: not a usable calibration: {files.describe_error(err)}") from None


def default_calibration_path(scene_path: str | Path) -> Path:
    p = Path(scene_path)
    return p.with_name(p.stem + ".calibration.json")


def depth_at(depth: np.ndarray, uv, window: int = 5) -> np.ndarray:
    """Depth in metres at pixels: the median of the valid readings in a small window (a click is
    never exactly on the pixel, and one pixel may have no reading)."""
    out = []
    h, w = depth.shape
    r = window // 2
    for u, v in np.atleast_2d(np.asarray(uv, np.float64)):
        iu, iv = int(round(u)), int(round(v))
        patch = depth[max(iv - r, 0) : min(iv + r + 1, h), max(iu - r, 0) : min(iu + r + 1, w)]
        valid = patch[patch > 0]
        if not valid.size:
            raise ValueError(f"no depth reading near pixel ({u:.0f}, {v:.0f}): pick another point")
        out.append(float(np.median(valid)) / 1000.0)
    return np.array(out)


def solve_from_clicks(
    image_points,
    world_points,
    depth: np.ndarray | None = None,
    intrinsics: Intrinsics | None = None,
    image_size: tuple[int, int] | None = None,
) -> tuple[Calibration, float]:
    """The calibration from clicked pixels and their scene points, and its RMS residual in metres.

    With a depth image: the camera's pose (needs intrinsics, three or more points). Without:
    a floor homography (four or more points on the floor or rock plane).
    """
    uv = np.asarray(image_points, np.float64).reshape(-1, 2)
    w = np.asarray(world_points, np.float64).reshape(-1, 3)
    if depth is not None:
        if intrinsics is None:
            raise ValueError("a depth calibration needs the sensor's intrinsics")
        cal = solve_depth_calibration(intrinsics, uv, depth_at(depth, uv), w)
        fit = cal.pixel_to_world(uv, depth_at(depth, uv))
    else:
        width, height = image_size or (0, 0)
        cal = FloorHomography.from_points(uv, w, width=width, height=height)
        fit = cal.pixel_to_world(uv)
        fit[:, 1] = w[:, 1]  # the plane's height is taken, not fitted
    residual = float(np.sqrt(np.mean(np.sum((fit - w) ** 2, axis=1))))
    return cal, residual


def _ask_point(i: int) -> tuple[float, float, float]:
    while True:
        text = input(f"scene point {i + 1} (x y z, metres): ")
        try:
            x, y, z = (float(t) for t in text.replace(",", " ").split())
            return x, y, z
        except ValueError:
            print("  three numbers, please, e.g. 1.0 0 -0.5")


def calibrate_command(
    scene_path: str | Path, source_spec: str, world_points=None, out: str | Path | None = None
) -> Path:
    """`waterrock calibrate SCENE --source SPEC`: click point pairs on a live frame, save JSON.

    Click a point in the image, then type its scene position (or give ``world_points`` in
    order). Keys: Enter = solve and save, u / Backspace = undo the last click, Esc = cancel.
    Needs a display (cv2 highgui). Saves beside the scene as <scene>.calibration.json unless
    ``out`` is given; set the scene's [tracking] calibration to that file.
    """
    from waterrock.tracking.frame import CorruptFrame, check_frame
    from waterrock.tracking.sources import open_source

    source = open_source(source_spec, loop=True)
    frame = None
    for f in source:
        try:
            check_frame(f)
        except CorruptFrame:
            continue
        frame = f
        break
    if frame is None:
        raise RuntimeError(f"{source_spec}: no usable frame to calibrate on")
    if frame.color is not None and frame.depth is None:
        view = frame.color.copy()
    else:
        view = cv2.applyColorMap(cv2.convertScaleAbs(frame.depth, alpha=255.0 / 8000.0), cv2.COLORMAP_TURBO)
    given = (
        None if world_points is None else [tuple(p) for p in np.asarray(world_points, float).reshape(-1, 3)]
    )
    clicks: list[tuple[float, float]] = []
    scene: list[tuple[float, float, float]] = []

    def on_mouse(event, x, y, _flags, _param) -> None:
        if event == cv2.EVENT_LBUTTONDOWN:
            clicks.append((float(x), float(y)))

    title = "waterrock calibrate: click points, Enter = save, u = undo, Esc = cancel"
    cv2.namedWindow(title, cv2.WINDOW_NORMAL)
    cv2.setMouseCallback(title, on_mouse)
    try:
        while True:
            while len(scene) < len(clicks):  # pair every new click with its scene point
                i = len(scene)
                scene.append(given[i] if given is not None and i < len(given) else _ask_point(i))
            img = view.copy()
            for i, (u, v) in enumerate(clicks):
                cv2.circle(img, (int(u), int(v)), 5, (0, 0, 255), 2)
                cv2.putText(
                    img, str(i + 1), (int(u) + 6, int(v) - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255)
                )
            cv2.imshow(title, img)
            key = cv2.waitKey(30) & 0xFF
            if key == 27:
                raise KeyboardInterrupt("calibration cancelled")
            if key in (ord("u"), 8) and clicks:
                clicks.pop()
                scene = scene[: len(clicks)]
            if key in (13, 10):
                needed = 3 if frame.depth is not None else 4
                if len(clicks) < needed:
                    print(f"{needed} or more points, please ({len(clicks)} so far)")
                    continue
                break
    finally:
        cv2.destroyWindow(title)
    intrinsics = getattr(source, "intrinsics", None)
    if intrinsics is None and isinstance(source.calibration, DepthCalibration):
        intrinsics = source.calibration.intrinsics
    if intrinsics is None and frame.depth is not None:
        h, w = frame.depth.shape
        intrinsics = Intrinsics.from_fov(w, h, 70.0)
        print("no intrinsics from the sensor: assuming a 70 degree horizontal field of view")
    h, w = (frame.depth if frame.depth is not None else frame.color).shape[:2]
    cal, residual = solve_from_clicks(clicks, scene, frame.depth, intrinsics, (w, h))
    path = save_calibration(cal, out or default_calibration_path(scene_path))
    print(f"saved {cal.kind} calibration to {path} (RMS residual {residual * 1000:.1f} mm)")
    return path
