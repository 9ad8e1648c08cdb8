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
The vendors' own recordings replay too: an Intel RealSense ``.bag`` (ROS1, from the RealSense
Viewer or rs-record; SDK 2.57 and later write ROS2 ``.db3``) and an Azure Kinect ``.mkv`` (from
k4arecorder or Orbbec's K4A wrapper), through the vendor's SDK, as the live sensors are read.

Time is the sensor's or the file's own: a video file's frames carry the container's presentation
time, a recording's frames the device clock it recorded. A header's frame rate lies often enough
(a 25 fps overhead video whose header said 50 doubled every speed) that it is only the fallback.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import queue
import threading
import time
from collections import deque
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


class _RunningClock:
    """Timestamps from a recording's own clock that keep increasing, whatever the recording does.

    Each pass of a looped recording starts one mean frame interval after the last one ended (as
    DepthRecordingSource does), so the tracker never sees time run backwards. A frame whose own
    time is missing, stalls or runs back (a container without timestamps reports 0 for every
    frame) is stamped ``period`` after the frame before: the header's rate, the only clock left.
    """

    def __init__(self, period: float) -> None:
        self.period = period
        self.last: float | None = None  # the last timestamp handed out
        self.fallbacks = 0  # frames stamped from ``period``, not from their own time
        self._offset = 0.0  # added to the recording's time: 0 on the first pass
        self._anchor: float | None = None  # where the next pass's first frame goes
        self._first = 0.0  # this pass's first timestamp
        self._frames = 0  # frames of this pass so far

    def new_pass(self) -> None:
        """The recording starts over: its time does, ours runs on."""
        if self.last is None:
            return
        step = (self.last - self._first) / (self._frames - 1) if self._frames > 1 else 0.0
        self._anchor = self.last + (step if step > 0 else self.period)
        self._frames = 0

    def __call__(self, own: float) -> float:
        if self._frames == 0 and self._anchor is not None and math.isfinite(own):
            self._offset = self._anchor - own
        t = own + self._offset
        if not math.isfinite(t) or (self.last is not None and t <= self.last):
            t = 0.0 if self.last is None else self.last + self.period
            self.fallbacks += 1
        if self._frames == 0:
            self._first = t
        self._frames += 1
        self.last = t
        return t


def _period(fps: float, default: float = 30.0) -> float:
    """1 / fps, or 1 / default where the rate given is none (0, NaN) or absurd."""
    return 1.0 / (fps if math.isfinite(fps) and 1.0 <= fps <= 1000.0 else default)


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
        # A file's own clock keeps velocities right however fast it is read: the container's
        # presentation time of each frame. With the FFmpeg backend CAP_PROP_POS_MSEC, read after
        # read(), is the decoded frame's pts less the stream's start time (cap_ffmpeg_impl.hpp:
        # dts_to_sec(picture_pts)), so 0 for the first frame and again after the file is reopened
        # for a loop; it is 0 for every frame where the container has no timestamps (a raw .h264),
        # and then the header's rate stamps them (_RunningClock). A live camera or stream keeps
        # time.monotonic(): one clock for every backend and across reopens (a driver's own stamp,
        # V4L2's buffer time, exists on some backends only and restarts with the device).
        clock = _RunningClock(_period(cap.get(cv2.CAP_PROP_FPS))) if self.is_file else None
        warned = False
        i = 0
        try:
            while True:
                ok, img = cap.read()
                if not ok:
                    if self.is_file and self.loop and i > 0:
                        cap.release()
                        cap = self._open()
                        clock.new_pass()
                        ok, img = cap.read()
                    if not ok:
                        if self.is_file:
                            return
                        raise SourceError(f"{self.name}: no frame (unplugged, or the stream ended)")
                if clock is None:
                    ts = time.monotonic()
                else:
                    ts = clock(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
                    if clock.fallbacks and not warned:
                        warned = True
                        log.warning("%s: the container gives no usable frame times; stamping frames at its "
                                    "header's %.3g fps", self.name, 1.0 / clock.period)
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


_BAG_QUEUE = 8  # frames the SDK's playback may hand over before it waits for this source's reader
_BAG_STALL_S = 5.0  # s without a frame from a recording that is still playing: something is wrong
# depth frames held while the colour of their instant has not come (the streams come in the order
# the file has them, or, in realtime, each on a thread of its own); beyond this, depth goes alone
_BAG_SKEW = 30


def _bgr(data: np.ndarray, fmt: str) -> np.ndarray | None:
    """A RealSense colour frame's pixels as BGR (OpenCV's order), or None for a format we do not read."""
    if fmt == "bgr8":
        return data.copy()
    if fmt == "rgb8":
        return cv2.cvtColor(data, cv2.COLOR_RGB2BGR)
    if fmt == "bgra8":
        return np.ascontiguousarray(data[..., :3])
    if fmt == "rgba8":
        return cv2.cvtColor(data, cv2.COLOR_RGBA2BGR)
    return None


class _VendorRecording(FrameSource):
    """A recording made with a sensor vendor's tool, played through its SDK pass after pass: each
    subclass gives ``_play_once(sdk, clock)``, the (own time, colour, depth) of one pass; the time
    runs on across passes (``_RunningClock``) and, unless the SDK paces itself, ``realtime``
    plays it at its own pace."""

    what = label = package = extra = ""
    sdk_paces = False

    def __init__(self, path: str | Path, loop: bool = True, realtime: bool = False) -> None:
        self.path = Path(path)
        self.loop, self.realtime = loop, realtime
        self.name = f"{self.label}:{self.path.name}"
        self.intrinsics: Intrinsics | None = None
        if not self.path.exists():
            raise SourceError(f"{self.what} not found: {self.path}")

    def _play_once(self, sdk, clock: _RunningClock) -> Iterator[tuple[float, np.ndarray | None, np.ndarray]]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        sdk = _require(self.package, self.extra, f"The {self.what} source")
        clock = _RunningClock(1.0 / 30.0)
        pacer = _Pacer(self.realtime and not self.sdk_paces)
        i = 0
        while True:
            n = 0
            for own, color, depth in self._play_once(sdk, clock):
                ts = clock(own)
                pacer.wait(ts)
                yield Frame(ts, color, depth, i)
                i += 1
                n += 1
            if n == 0:
                raise SourceError(f"{self.path}: no depth frames in the recording")
            if not self.loop:
                return
            clock.new_pass()


class RealSenseBagSource(_VendorRecording):
    """An Intel RealSense recording, replayed by the SDK's playback device (pyrealsense2).

    A ROS1 ``.bag`` from the RealSense Viewer, rs-record or ``config.enable_record_to_file``, or
    the ROS2 ``.db3`` that SDK 2.57 and later write (both read by SDK 2.59). Depth in mm, colour
    aligned to depth by the SDK's rs.align, timestamps from the frames' own (device) clock, as
    RealSenseSource gives them live.

    The sensors are played one by one rather than through rs.pipeline: the pipeline starts the
    playback before ``set_real_time(False)`` can be called, and lost the first frame in our tests,
    and its syncer handed out each depth frame twice (once with the previous colour frame). Here
    ``set_real_time`` comes before any frame, and each depth frame is paired with the colour frame
    nearest it in time, once the colour stream has passed its instant (each sensor plays on a
    thread of its own, so one stream may run some frames ahead of the other).
    """

    what, label, package, extra = "RealSense recording", "realsense-bag", "pyrealsense2", "realsense"
    sdk_paces = True  # playback.set_real_time

    def __init__(self, path: str | Path, loop: bool = True, realtime: bool = False) -> None:
        super().__init__(path, loop, realtime)
        self._warned_format = False

    def _play_once(self, rs, clock: _RunningClock) -> Iterator[tuple[float, np.ndarray | None, np.ndarray]]:
        """(own time s, colour BGR or None, depth mm) of each depth frame, one pass of the file."""
        try:
            dev = rs.context().load_device(str(self.path))
        except RuntimeError as err:
            raise SourceError(f"{self.path}: the RealSense SDK cannot read it: {err}") from err
        playback = dev.as_playback()
        playback.set_real_time(self.realtime)  # before any sensor starts: no frame plays before it holds
        wanted = (rs.stream.depth, rs.stream.color)
        opened = []
        depth_profile = color_profile = None
        for sensor in dev.query_sensors():
            profiles = [pr for pr in sensor.get_stream_profiles() if pr.stream_type() in wanted]
            for pr in profiles:
                if pr.stream_type() == rs.stream.depth and depth_profile is None:
                    depth_profile = pr
                elif pr.stream_type() == rs.stream.color and color_profile is None:
                    color_profile = pr
            if profiles:
                opened.append((sensor, profiles))
        if depth_profile is None:
            raise SourceError(f"{self.path}: the recording has no depth stream")
        ki = depth_profile.as_video_stream_profile().get_intrinsics()
        self.intrinsics = Intrinsics(ki.width, ki.height, ki.fx, ki.fy, ki.ppx, ki.ppy)
        clock.period = _period(depth_profile.fps())
        to_mm = dev.first_depth_sensor().get_depth_scale() * 1000.0

        frames: queue.Queue = queue.Queue(maxsize=_BAG_QUEUE)
        stopping, all_started = threading.Event(), threading.Event()

        def on_frame(f) -> None:  # the SDK's playback thread
            # The playback reads the file from the moment the first sensor starts, and drops what
            # a sensor not yet started would get (the colour stream lost its first 8 frames in our
            # tests). Not in realtime, it waits for the callbacks (a slow reader lost no frame in
            # our tests), so holding the first one here until every sensor has started holds the
            # reading: no colour frame was lost in 25 replays. (playback.pause/resume do not serve:
            # resume waits for the reading thread while pyrealsense2 holds the interpreter lock
            # that this callback needs, and stalled 10 s, the SDK's timeout, in one start of three.)
            while not all_started.wait(0.1):
                if stopping.is_set():
                    return
            f.keep()  # held past this callback: the SDK allocates another instead of reusing it
            if self.realtime:  # as a live camera: a slow reader loses the oldest frames, not the clock
                while not stopping.is_set():
                    try:
                        frames.put_nowait(f)
                        return
                    except queue.Full:
                        try:
                            frames.get_nowait()
                        except queue.Empty:
                            pass
                return
            while not stopping.is_set():  # as fast as read, and no frame lost: the playback waits
                try:
                    frames.put(f, timeout=0.1)
                    return
                except queue.Full:
                    continue

        # colour into the depth camera by the SDK's own rs.align, which takes a frameset: a
        # processing block makes one of a depth frame and the colour frame paired with it
        partner: list = []
        composed = rs.frame_queue(1)
        compose = rs.processing_block(
            lambda f, src: src.frame_ready(src.allocate_composite_frame([f, partner[0]]))
        )
        compose.start(composed)
        align = rs.align(rs.stream.depth)

        def emit(d, colors: deque):
            c = None
            if colors:  # the nearest in time, as the SDK's syncer pairs them
                c = min(colors, key=lambda cf: abs(cf.get_timestamp() - d.get_timestamp()))
                if abs(c.get_timestamp() - d.get_timestamp()) > 500.0 * clock.period:
                    c = None  # nearer another depth frame: this one's colour was not recorded, or lost
            color = None
            if c is not None:
                partner[:] = [c]
                compose.invoke(d)
                fs = align.process(composed.wait_for_frame(1000).as_frameset())
                d, cf = fs.get_depth_frame(), fs.get_color_frame()
                fmt = cf.get_profile().format().name if cf else ""
                color = _bgr(np.asanyarray(cf.get_data()), fmt) if cf else None
                if color is None and cf and not self._warned_format:
                    self._warned_format = True
                    log.warning("%s: colour in %s is not read; depth only", self.name, fmt)
            depth = np.asanyarray(d.get_data())
            depth = np.clip(depth * to_mm, 0, 65535).astype(np.uint16) if abs(to_mm - 1.0) > 1e-6 else depth.copy()
            return d.get_timestamp() / 1000.0, color, depth

        # the depth sensor first: a frame read before its sensor has started is lost, and so the
        # colour frames recorded before a pass's first depth frame may be (that depth frame then has
        # none: the SDK's own rs.pipeline lost the first frame of both in our tests)
        opened.sort(key=lambda so: all(pr.stream_type() != rs.stream.depth for pr in so[1]))
        try:
            for sensor, profiles in opened:
                sensor.open(profiles)
                sensor.start(on_frame)
            all_started.set()
            pending: deque = deque()  # depth frames waiting for the colour of their instant
            colors: deque = deque()
            quiet_since = time.monotonic()
            while True:
                try:
                    f = frames.get(timeout=0.05)
                except queue.Empty:
                    idle = time.monotonic() - quiet_since
                    # the end: the playback has stopped and nothing more came for a while
                    if playback.current_status() == rs.playback_status.stopped and idle > 0.2:
                        break
                    if idle > _BAG_STALL_S:
                        raise SourceError(f"{self.name}: no frame for {_BAG_STALL_S:g} s") from None
                    continue
                quiet_since = time.monotonic()
                (colors if f.get_profile().stream_type() == rs.stream.color else pending).append(f)
                while pending and (
                    color_profile is None
                    or (colors and colors[-1].get_timestamp() >= pending[0].get_timestamp())
                    or len(pending) > _BAG_SKEW
                ):
                    d = pending.popleft()
                    yield emit(d, colors)
                    # no later depth frame is nearer to a colour frame before the last one up to d
                    while len(colors) > 1 and colors[1].get_timestamp() <= d.get_timestamp():
                        colors.popleft()
            while pending:  # the end of the file: their colour has come, or never will
                yield emit(pending.popleft(), colors)
        finally:
            stopping.set()
            for sensor, _ in opened:
                try:
                    sensor.stop()
                    sensor.close()
                except RuntimeError:  # already stopped at the end of the file
                    pass


def is_kinect_recording(path: str | Path) -> bool:
    """Whether ``path`` is an Azure Kinect recording rather than any Matroska video: k4arecorder
    writes its K4A_* tags (K4A_DEPTH_MODE, ...) into the file's header, before the first frame."""
    try:
        with open(path, "rb") as f:
            return b"K4A_DEPTH_MODE" in f.read(1 << 20)
    except OSError:
        return False


class KinectRecordingSource(_VendorRecording):
    """An Azure Kinect (or Orbbec K4A wrapper) .mkv recording, replayed by pyk4a's PyK4APlayback.

    Depth in mm, colour mapped into the depth camera by the SDK (its transformation, as
    KinectSource's ``transformed_color``), timestamps the capture's device time, intrinsics from
    the recording's calibration.
    """

    what, label, package, extra = "Azure Kinect recording", "kinect-recording", "pyk4a", "kinect"

    def _play_once(self, k4a, clock: _RunningClock) -> Iterator[tuple[float, np.ndarray | None, np.ndarray]]:
        from pyk4a.transformation import color_image_to_depth_camera

        playback = k4a.PyK4APlayback(self.path)
        try:
            playback.open()
        except k4a.K4AException as err:
            raise SourceError(f"{self.path}: the Azure Kinect SDK cannot read it: {err}") from err
        try:
            # read before the first capture: pyk4a hands each capture the playback's calibration,
            # which it loads only when asked, and without it there is no colour transformation
            calibration = playback.calibration
            config = playback.configuration
            fps = {k4a.FPS.FPS_5: 5.0, k4a.FPS.FPS_15: 15.0}.get(config["camera_fps"], 30.0)
            clock.period = 1.0 / fps
            m = calibration.get_camera_matrix(k4a.CalibrationType.DEPTH)
            fmt = config["color_format"]
            formats = getattr(k4a, "ImageFormat", None) or k4a.ColorFormat  # older pyk4a's name
            safe = getattr(playback, "thread_safe", True)
            warned = False
            while True:
                try:
                    cap = playback.get_next_capture()
                except EOFError:
                    return
                depth = cap.depth
                if depth is None:
                    continue  # a colour-only capture (the recording's first ones)
                if self.intrinsics is None:
                    self.intrinsics = Intrinsics(depth.shape[1], depth.shape[0], m[0, 0], m[1, 1], m[0, 2], m[1, 2])
                color = None
                if cap.color is not None:
                    if fmt == formats.COLOR_BGRA32:
                        color = cap.transformed_color
                    elif fmt == formats.COLOR_MJPG:  # k4arecorder's default: JPEG frames
                        bgr = cv2.imdecode(np.frombuffer(cap.color, np.uint8), cv2.IMREAD_COLOR)
                        if bgr is not None:
                            bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
                            color = color_image_to_depth_camera(bgra, depth, calibration, safe)
                    elif not warned:
                        warned = True
                        log.warning("%s: colour in %s is not read; depth only", self.name, fmt)
                if color is not None:
                    color = np.ascontiguousarray(color[..., :3])  # BGRA -> BGR
                yield cap.depth_timestamp_usec / 1e6, color, np.asarray(depth, np.uint16)
        finally:
            playback.close()


def vendor_recording(path: str | Path, *, any_mkv: bool = False, **kw) -> FrameSource | None:
    """The source for a vendor's recording by its name: a RealSense ``.bag``/``.db3``, an Azure
    Kinect ``.mkv`` (one that carries the Kinect's tags, or any where ``any_mkv``: the scene said
    it is a depth recording), else None. ``kw``: loop, realtime."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".bag", ".db3"):
        return RealSenseBagSource(p, **kw)
    if suffix == ".mkv" and (any_mkv or is_kinect_recording(p)):
        return KinectRecordingSource(p, **kw)
    return None


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
    'kinect' / 'orbbec', 'bag:<file>' or a .bag / .db3 RealSense recording, 'k4a:<file>' or an
    Azure Kinect .mkv (a .mkv without the Kinect's tags is a video), 'none'.
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
    if kind == "bag":
        return RealSenseBagSource(Path(arg), loop=loop, realtime=realtime)
    if kind == "k4a":
        return KinectRecordingSource(Path(arg), loop=loop, realtime=realtime)
    p = Path(s)
    if p.suffix == ".npz" or (p.is_dir() and (p / "timestamps.txt").exists()):
        return DepthRecordingSource(p, loop=loop, realtime=realtime)
    vendor = vendor_recording(p, loop=loop, realtime=realtime)
    if vendor is not None:
        return vendor
    if p.is_file():
        return OpenCVSource(p, loop=loop, realtime=realtime)
    raise ValueError(
        f"unknown source {s!r}: expected synthetic[:script], camera:N, video:FILE, depth:PATH, "
        "bag:FILE, k4a:FILE, rtsp://..., realsense, kinect, orbbec or none"
    )


def source_from_settings(settings, ground=None) -> FrameSource:
    """The source a scene's [tracking] section names (a TrackingSettings); ``ground`` (a
    synthetic.Ground) is what synthetic visitors stand on."""
    s = settings
    common = {"loop": s.loop, "realtime": s.realtime}
    if s.source == "none":
        return NullSource()
    if s.source == "synthetic":
        from waterrock.tracking.synthetic import SyntheticSource

        return SyntheticSource(s.synthetic_script, fps=s.fps, ground=ground, **common)
    if s.source == "camera":
        return OpenCVSource(s.camera_index, width=s.width, height=s.height, fps=s.fps)
    if s.source == "video":
        return OpenCVSource(s.path, **common)
    if s.source == "stream":
        return OpenCVSource(s.url)
    if s.source == "depth_recording":
        return vendor_recording(s.path, any_mkv=True, **common) or DepthRecordingSource(s.path, **common)
    if s.source == "realsense":
        return RealSenseSource(s.width, s.height, s.fps)
    if s.source == "kinect":
        return KinectSource(s.fps)
    raise ValueError(f"unknown tracking source {s.source!r}")
