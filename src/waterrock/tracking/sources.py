"""Frame sources: anything that yields :class:`Frame` s, behind one small interface.

A source is iterated (``for frame in source``) by one thread; iteration opens the device and
ends (or raises :class:`SourceError`) when it goes away, and the runner then opens it again.
Live sensors are optional extras: a missing package or device is a clear
:class:`MissingDependency` / :class:`DeviceNotFound` naming it, raised when the source is
opened, never at import.

Depth recordings (written by record.py) are either a folder
``depth_000000.png`` (16-bit, millimetres), ``color_000000.png``, ``timestamps.txt``
(``index timestamp`` per line) and ``meta.json``, or one ``.npz`` with the arrays
``depth`` (N, H, W) uint16, ``color`` (N, H, W, 3) uint8, ``timestamps``, ``index`` and ``meta``.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from waterrock.tracking.calibrate import Calibration, DepthCalibration, FloorHomography, Intrinsics
from waterrock.tracking.frame import Frame

log = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """The source cannot deliver frames (now): the runner backs off and reopens it."""


class MissingDependency(SourceError):
    """An optional package a source needs is not installed."""


class DeviceNotFound(SourceError):
    """The sensor a source needs is not attached (or is busy)."""


class FrameSource:
    """Iterate to get frames. ``calibration`` is what the source knows of its own geometry."""

    name: str = "source"
    calibration: Calibration | None = None

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


def _require(module: str, extra: str, what: str):
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependency(
            f"{what} needs the Python package '{module}', which is not installed: "
            f"pip install 'waterrock[{extra}]'"
        ) from err


class _Pacer:
    """Sleeps so that recorded frames come out at the rate they were recorded."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._t0: float | None = None
        self._wall0 = 0.0

    def wait(self, timestamp: float) -> None:
        if not self.enabled:
            return
        if self._t0 is None or timestamp < self._t0:
            self._t0, self._wall0 = timestamp, time.monotonic()
            return
        delay = self._wall0 + (timestamp - self._t0) - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class OpenCVSource(FrameSource):
    """A webcam (int index), a video file (looped) or a stream URL, through cv2.VideoCapture."""

    def __init__(
        self,
        target: int | str | Path,
        loop: bool = True,
        realtime: bool = False,
        width: int | None = None,
        height: int | None = None,
        fps: int | None = None,
    ) -> None:
        self.target = target
        self.is_file = not isinstance(target, int) and "://" not in str(target)
        self.loop = loop
        self.realtime = realtime
        self.size = (width, height)
        self.fps = fps
        self.name = f"opencv:{target}"
        if self.is_file and not Path(target).exists():
            raise SourceError(f"video file not found: {target}")

    def _open(self) -> cv2.VideoCapture:
        target = self.target if isinstance(self.target, int) else str(self.target)
        cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            cap.release()
            kind = "camera" if isinstance(self.target, int) else "video" if self.is_file else "stream"
            raise DeviceNotFound(f"OpenCV could not open {kind} {self.target!r}")
        if not self.is_file:
            w, h = self.size
            if w and h:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
            if self.fps:
                cap.set(cv2.CAP_PROP_FPS, self.fps)
        return cap

    def __iter__(self) -> Iterator[Frame]:
        cap = self._open()
        pacer = _Pacer(self.realtime and self.is_file)
        # a file's own clock (frame / fps) keeps velocities right however fast it is read
        file_fps = (cap.get(cv2.CAP_PROP_FPS) or 30.0) if self.is_file else 0.0
        i = 0
        try:
            while True:
                ok, img = cap.read()
                if not ok:
                    if self.is_file and self.loop and i > 0:
                        cap.release()
                        cap = self._open()
                        ok, img = cap.read()
                    if not ok:
                        if self.is_file:
                            return
                        raise SourceError(f"{self.name}: no frame (unplugged, or the stream ended)")
                ts = i / file_fps if self.is_file else time.monotonic()
                pacer.wait(ts)
                if img.ndim == 2:
                    img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
                yield Frame(timestamp=ts, color=img, index=i)
                i += 1
        finally:
            cap.release()


def _calibration_from_meta(meta: dict) -> Calibration | None:
    cal = meta.get("calibration")
    if not cal:
        return None
    return DepthCalibration.from_dict(cal) if cal.get("kind") == "depth" else FloorHomography.from_dict(cal)


def _read_index(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Frame numbers and timestamps of a folder recording's timestamps.txt, one "n t" line each.

    Only whole lines count: the recorder writes a frame's line after its images, so a last line
    without its newline (or the zeros a power cut leaves) is a frame that was never finished. An
    empty file is a recording of no frames (Ctrl-C right after the start).
    """
    lines = path.read_bytes().split(b"\n")
    indices, stamps = [], []
    for k, line in enumerate(lines[:-1]):  # the part after the last newline is never whole
        fields = line.split()
        try:
            n, t = (int(fields[0]), float(fields[1])) if len(fields) == 2 else (None, None)
        except ValueError:
            n = None
        if n is None:
            raise SourceError(f"{path}: line {k + 1} is not 'frame timestamp': {line[:40]!r}")
        indices.append(n)
        stamps.append(t)
    if lines[-1].strip():
        log.warning("%s: left out a torn last line (%d bytes): the recording was cut off there", path, len(lines[-1]))
    return np.asarray(indices, np.int64), np.asarray(stamps, np.float64)


class DepthRecordingSource(FrameSource):
    """A recording: a folder of 16-bit PNGs (+ timestamps.txt) or one .npz, see module doc."""

    def __init__(self, path: str | Path, loop: bool = True, realtime: bool = False) -> None:
        self.path = Path(path)
        self.loop = loop
        self.realtime = realtime
        self.name = f"recording:{self.path.name}"
        if not self.path.exists():
            raise SourceError(f"depth recording not found: {self.path}")
        self._npz = self.path.suffix == ".npz"
        if self._npz:
            with np.load(self.path, allow_pickle=False) as z:
                self.timestamps = np.asarray(z["timestamps"], np.float64)
                self.indices = (
                    np.asarray(z["index"], np.int64) if "index" in z else np.arange(len(self.timestamps))
                )
                meta = json.loads(str(z["meta"])) if "meta" in z else {}
        else:
            ts_file = self.path / "timestamps.txt"
            if not ts_file.exists():
                raise SourceError(f"{self.path}: no timestamps.txt, not a depth recording")
            self.indices, self.timestamps = _read_index(ts_file)
            meta_file = self.path / "meta.json"
            meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        self.meta = meta
        self.calibration = _calibration_from_meta(meta)

    def __len__(self) -> int:
        return len(self.timestamps)

    def _frames_once(self) -> Iterator[Frame]:
        if self._npz:
            with np.load(self.path, allow_pickle=False) as z:
                depth = z["depth"] if "depth" in z else None
                color = z["color"] if "color" in z else None
                for k, ts in enumerate(self.timestamps):
                    yield Frame(
                        float(ts),
                        None if color is None else color[k],
                        None if depth is None else depth[k],
                        int(self.indices[k]),
                    )
            return
        for k, ts in enumerate(self.timestamps):
            n = int(self.indices[k])
            dp, cp = self.path / f"depth_{n:06d}.png", self.path / f"color_{n:06d}.png"
            depth = cv2.imread(str(dp), cv2.IMREAD_UNCHANGED) if dp.exists() else None
            color = cv2.imread(str(cp), cv2.IMREAD_COLOR) if cp.exists() else None
            if depth is None and color is None:
                raise SourceError(f"{self.path}: frame {n} has no readable image")
            yield Frame(float(ts), color, depth, n)

    def __iter__(self) -> Iterator[Frame]:
        pacer = _Pacer(self.realtime)
        offset = 0.0
        span = float(self.timestamps[-1] - self.timestamps[0]) if len(self) else 0.0
        period = span + (span / max(len(self) - 1, 1))
        while True:
            for f in self._frames_once():
                f = Frame(f.timestamp + offset, f.color, f.depth, f.index)
                pacer.wait(f.timestamp)
                yield f
            if not self.loop or not len(self):
                return
            offset += period  # time runs on across loops: no negative dt for the tracker


class RealSenseSource(FrameSource):
    """Intel RealSense D4xx (pyrealsense2): depth in mm, colour aligned to depth."""

    def __init__(self, width: int = 640, height: int = 480, fps: int = 30, serial: str | None = None) -> None:
        self.size, self.fps, self.serial = (width, height), fps, serial
        self.name = "realsense"

    def __iter__(self) -> Iterator[Frame]:
        rs = _require("pyrealsense2", "realsense", "The RealSense source")
        if len(rs.context().query_devices()) == 0:
            raise DeviceNotFound(
                "no Intel RealSense camera found (plugged into a USB 3 port? in use elsewhere?)"
            )
        pipe, cfg = rs.pipeline(), rs.config()
        if self.serial:
            cfg.enable_device(self.serial)
        w, h = self.size
        cfg.enable_stream(rs.stream.depth, w, h, rs.format.z16, self.fps)
        cfg.enable_stream(rs.stream.color, w, h, rs.format.bgr8, self.fps)
        try:
            profile = pipe.start(cfg)
        except RuntimeError as err:
            raise DeviceNotFound(f"RealSense: could not start {w}x{h}@{self.fps}: {err}") from err
        try:
            to_mm = profile.get_device().first_depth_sensor().get_depth_scale() * 1000.0
            ki = profile.get_stream(rs.stream.depth).as_video_stream_profile().get_intrinsics()
            self.intrinsics = Intrinsics(ki.width, ki.height, ki.fx, ki.fy, ki.ppx, ki.ppy)
            align = rs.align(rs.stream.depth)
            i = 0
            while True:
                try:
                    fs = align.process(pipe.wait_for_frames(2000))
                except RuntimeError as err:
                    raise SourceError(f"RealSense: no frames for 2 s: {err}") from err
                d = np.asanyarray(fs.get_depth_frame().get_data())
                if abs(to_mm - 1.0) > 1e-6:
                    d = np.clip(d * to_mm, 0, 65535).astype(np.uint16)
                c = fs.get_color_frame()
                yield Frame(
                    fs.get_timestamp() / 1000.0,
                    np.asanyarray(c.get_data()).copy() if c else None,
                    d.copy(),
                    i,
                )
                i += 1
        finally:
            pipe.stop()


class KinectSource(FrameSource):
    """Azure Kinect, or Orbbec Femto through Orbbec's K4A wrapper (pyk4a): depth in mm."""

    def __init__(self, fps: int = 30, device_id: int = 0) -> None:
        self.fps, self.device_id = fps, device_id
        self.name = "kinect"

    def __iter__(self) -> Iterator[Frame]:
        k4a = _require("pyk4a", "kinect", "The Azure Kinect / Orbbec Femto source")
        if k4a.connected_device_count() <= self.device_id:
            raise DeviceNotFound(f"no Azure Kinect / Orbbec Femto device #{self.device_id} found")
        fps = {5: k4a.FPS.FPS_5, 15: k4a.FPS.FPS_15}.get(self.fps, k4a.FPS.FPS_30)
        cam = k4a.PyK4A(
            k4a.Config(
                color_resolution=k4a.ColorResolution.RES_720P,
                depth_mode=k4a.DepthMode.NFOV_UNBINNED,
                camera_fps=fps,
                synchronized_images_only=True,
            ),
            device_id=self.device_id,
        )
        cam.start()
        try:
            m = cam.calibration.get_camera_matrix(k4a.CalibrationType.DEPTH)
            d0 = cam.get_capture().depth
            self.intrinsics = Intrinsics(d0.shape[1], d0.shape[0], m[0, 0], m[1, 1], m[0, 2], m[1, 2])
            i = 0
            while True:
                cap = cam.get_capture(timeout=2000)
                color = cap.transformed_color
                if color is not None:
                    color = np.ascontiguousarray(color[..., :3])  # BGRA -> BGR
                yield Frame(cap.depth_timestamp_usec / 1e6, color, cap.depth, i)
                i += 1
        except k4a.K4ATimeoutException as err:
            raise SourceError("Kinect: no capture for 2 s") from err
        finally:
            cam.stop()


class NullSource(FrameSource):
    """No visitors from a camera (OSC only, or an empty stage)."""

    name = "none"

    def __iter__(self) -> Iterator[Frame]:
        return iter(())


def open_source(
    spec: str | int | Path,
    *,
    loop: bool = True,
    realtime: bool = False,
    width: int = 640,
    height: int = 480,
    fps: int = 30,
) -> FrameSource:
    """A source from a short spec, as the CLI takes it.

    'synthetic' or 'synthetic:<script>', 'camera:0' or '0', 'video:<file>' or a video file,
    'rtsp://...' / 'http://...', 'depth:<folder or .npz>' or such a path, 'realsense',
    'kinect' / 'orbbec', 'none'.
    """
    s = str(spec)
    kind, _, arg = s.partition(":") if "://" not in s else ("stream", "", s)
    if kind in ("none", ""):
        return NullSource()
    if kind == "synthetic":
        from waterrock.tracking.synthetic import SyntheticSource

        return SyntheticSource(arg or "gather", loop=loop, realtime=realtime, fps=fps)
    if kind == "camera" or s.isdigit():
        return OpenCVSource(
            int(arg or 0) if kind == "camera" else int(s), width=width, height=height, fps=fps
        )
    if kind == "stream":
        return OpenCVSource(arg)
    if kind == "video":
        return OpenCVSource(Path(arg), loop=loop, realtime=realtime)
    if kind == "depth":
        return DepthRecordingSource(Path(arg), loop=loop, realtime=realtime)
    if kind == "realsense":
        return RealSenseSource(width, height, fps, serial=arg or None)
    if kind in ("kinect", "orbbec"):
        return KinectSource(fps, int(arg or 0))
    p = Path(s)
    if p.suffix == ".npz" or (p.is_dir() and (p / "timestamps.txt").exists()):
        return DepthRecordingSource(p, loop=loop, realtime=realtime)
    if p.is_file():
        return OpenCVSource(p, loop=loop, realtime=realtime)
    raise ValueError(
        f"unknown source {s!r}: expected synthetic[:script], camera:N, video:FILE, depth:PATH, "
        "rtsp://..., realsense, kinect, orbbec or none"
    )


def source_from_settings(settings) -> FrameSource:
    """The source a scene's [tracking] section names (a TrackingSettings)."""
    s = settings
    common = {"loop": s.loop, "realtime": s.realtime}
    if s.source == "none":
        return NullSource()
    if s.source == "synthetic":
        from waterrock.tracking.synthetic import SyntheticSource

        return SyntheticSource(s.synthetic_script, fps=s.fps, **common)
    if s.source == "camera":
        return OpenCVSource(s.camera_index, width=s.width, height=s.height, fps=s.fps)
    if s.source == "video":
        return OpenCVSource(s.path, **common)
    if s.source == "stream":
        return OpenCVSource(s.url)
    if s.source == "depth_recording":
        return DepthRecordingSource(s.path, **common)
    if s.source == "realsense":
        return RealSenseSource(s.width, s.height, s.fps)
    if s.source == "kinect":
        return KinectSource(s.fps)
    raise ValueError(f"unknown tracking source {s.source!r}")
