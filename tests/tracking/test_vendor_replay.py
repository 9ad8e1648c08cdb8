"""Replays from the vendors' own tools: a RealSense recording made here without a camera (the
SDK's software device, recorded by its own recorder), and the Azure Kinect's .mkv (whose SDK
cannot be installed here: its clear message is what is tested)."""

from __future__ import annotations

import gc
import itertools
import sys
import time

import numpy as np
import pytest

from waterrock.tracking.settings import TrackingSettings
from waterrock.tracking.sources import (
    KinectRecordingSource,
    MissingDependency,
    OpenCVSource,
    RealSenseBagSource,
    SourceError,
    open_source,
    source_from_settings,
)

W, H, N = 64, 48, 8
T0_MS, STEP_MS = 5000.0, 40.0  # the device clock: frames 40 ms apart
FX, FY, CX, CY = 50.0, 51.0, 31.5, 23.5


def depth_of(i: int) -> np.ndarray:
    """Frame i's depth, mm: a ramp across the image, lifted 100 mm each frame."""
    u = np.arange(W, dtype=np.uint16)
    return np.ascontiguousarray(np.broadcast_to(1000 + 100 * i + 5 * u, (H, W)), np.uint16)  # the SDK reads rows


def rgb_of(i: int) -> np.ndarray:
    """Frame i's colour as the camera sends it (RGB, the RealSense Viewer's default): R = 10 i,
    G = the column, B = the row."""
    v, u = np.mgrid[0:H, 0:W]
    return np.stack([np.full((H, W), 10 * i), u, v], axis=-1).astype(np.uint8)


def record(rs, path, pace: float) -> str:
    """Record N frames pushed through a software device; returns the path the SDK wrote. SDK 2.57
    and later write ROS2 .db3 only (the recorder refuses another suffix), earlier ones ROS1 .bag."""
    dev = rs.software_device()
    depth_sensor, color_sensor = dev.add_sensor("Depth"), dev.add_sensor("Color")
    intr = rs.intrinsics()
    intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy = W, H, FX, FY, CX, CY
    intr.model, intr.coeffs = rs.distortion.none, [0.0] * 5

    def stream(kind, uid, bpp, fmt):
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid = kind, 0, uid
        vs.width, vs.height, vs.fps, vs.bpp, vs.fmt, vs.intrinsics = W, H, 25, bpp, fmt, intr
        return vs

    dprof = depth_sensor.add_video_stream(stream(rs.stream.depth, 0, 2, rs.format.z16))
    cprof = color_sensor.add_video_stream(stream(rs.stream.color, 1, 3, rs.format.rgb8))
    depth_sensor.add_read_only_option(rs.option.depth_units, 0.001)
    same_place = rs.extrinsics()  # zero-filled unless set: rs.align then maps nothing
    same_place.rotation, same_place.translation = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], [0.0, 0, 0]
    dprof.register_extrinsics_to(cprof, same_place)
    try:
        rec = rs.recorder(str(path), dev)
    except RuntimeError as err:
        if ".db3" not in str(err):
            raise
        path = path.with_suffix(".db3")
        rec = rs.recorder(str(path), dev)
    rec_depth, rec_color = rec.query_sensors()
    rec_depth.open(dprof)
    rec_color.open(cprof)
    rec_depth.start(lambda f: None)
    rec_color.start(lambda f: None)
    for i in range(N):
        for sensor, prof, pixels, bpp in (
            (depth_sensor, dprof, depth_of(i), 2),
            (color_sensor, cprof, rgb_of(i), 3),
        ):
            f = rs.software_video_frame()
            f.pixels, f.bpp, f.stride = pixels, bpp, W * bpp
            f.timestamp, f.domain, f.frame_number = T0_MS + STEP_MS * i, rs.timestamp_domain.hardware_clock, i
            f.profile = prof.as_video_stream_profile()
            sensor.on_video_frame(f)
        time.sleep(pace)  # the recording's own (wall) time, which realtime playback follows
    for s in (rec_depth, rec_color):
        s.stop()
        s.close()
    return str(path)


@pytest.fixture(scope="module")
def rs_recording(tmp_path_factory):
    rs = pytest.importorskip("pyrealsense2", exc_type=ImportError)  # on Linux it needs libusb-1.0
    path = record(rs, tmp_path_factory.mktemp("rs") / "walk.bag", pace=0.03)
    gc.collect()  # the recorder writes the file's index when it goes
    return path


def test_realsense_recording_replays_depth_colour_and_device_time(rs_recording):
    src = open_source(rs_recording, loop=False)
    assert isinstance(src, RealSenseBagSource)
    frames = list(src)
    assert len(frames) == N
    assert [f.index for f in frames] == list(range(N))
    for i, f in enumerate(frames):
        assert f.depth.dtype == np.uint16
        np.testing.assert_array_equal(f.depth, depth_of(i))
        if f.color is None:
            # a colour frame written just before the first depth frame is lost at the start of
            # playback (the SDK drops frames of a sensor not yet started): only there may one lack
            assert i == 0, f"frame {i}: no colour"
            continue
        # BGR now, and this frame's colour (R = 10 i), aligned by the SDK to depth: same place and
        # intrinsics, so pixel to pixel, give or take the one pixel rs.align's rounding moves some by
        got, want = f.color[2:-2, 2:-2].astype(int), rgb_of(i)[2:-2, 2:-2, ::-1].astype(int)
        np.testing.assert_array_equal(got[..., 2], want[..., 2])
        assert np.abs(got[..., :2] - want[..., :2]).max() <= 1
    stamps = np.array([f.timestamp for f in frames])
    assert stamps[0] == pytest.approx(T0_MS / 1000)  # the device's clock, not the reader's
    np.testing.assert_allclose(np.diff(stamps), STEP_MS / 1000, atol=1e-6)
    k = src.intrinsics
    assert (k.width, k.height, k.fx, k.fy, k.cx, k.cy) == pytest.approx((W, H, FX, FY, CX, CY))


def test_looped_realsense_recording_runs_time_on(rs_recording):
    frames = list(itertools.islice(RealSenseBagSource(rs_recording, loop=True), 2 * N + 3))
    stamps = np.array([f.timestamp for f in frames])
    np.testing.assert_allclose(np.diff(stamps), STEP_MS / 1000, atol=1e-6)
    np.testing.assert_array_equal(frames[N].depth, depth_of(0))
    assert frames[-1].index == 2 * N + 2


def test_realsense_recording_plays_at_its_own_pace_in_realtime(rs_recording):
    t0 = time.monotonic()
    seen = [time.monotonic() - t0 for _ in RealSenseBagSource(rs_recording, loop=False, realtime=True)]
    assert len(seen) == N
    assert seen[-1] - seen[0] > 0.5 * (N - 1) * 0.03  # recorded 30 ms apart; read as fast as may be, ~0


def test_settings_pick_the_vendor_recordings(rs_recording, tmp_path):
    s = TrackingSettings(source="depth_recording", path=rs_recording, loop=False)
    assert isinstance(source_from_settings(s), RealSenseBagSource)
    mkv = tmp_path / "k4a.mkv"
    mkv.write_bytes(b"\x1a\x45\xdf\xa3 not really")
    s = TrackingSettings(source="depth_recording", path=mkv)
    assert isinstance(source_from_settings(s), KinectRecordingSource)


def test_a_file_the_sdk_cannot_read_is_a_source_error(tmp_path):
    pytest.importorskip("pyrealsense2", exc_type=ImportError)
    junk = tmp_path / "junk.bag"
    junk.write_bytes(b"not a bag at all")
    with pytest.raises(SourceError, match="junk.bag"):
        next(iter(RealSenseBagSource(junk)))


def test_missing_realsense_package_is_named_when_opened_not_before(monkeypatch, tmp_path):
    bag = tmp_path / "walk.bag"
    bag.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)  # what Python does when it is absent
    src = open_source(bag)  # no import yet
    with pytest.raises(MissingDependency, match=r"'pyrealsense2'.*waterrock\[realsense\]"):
        next(iter(src))


def test_kinect_recording_needs_pyk4a_and_says_so(monkeypatch, tmp_path):
    rec = tmp_path / "visit.mkv"
    # what k4arecorder writes into the Matroska header, among its tags
    rec.write_bytes(b"\x1a\x45\xdf\xa3" + b"\x00" * 64 + b"K4A_DEPTH_MODE\x00NFOV_UNBINNED" + b"\x00" * 64)
    monkeypatch.setitem(sys.modules, "pyk4a", None)
    for spec in (rec, f"k4a:{rec}"):
        src = open_source(spec)
        assert isinstance(src, KinectRecordingSource)
        with pytest.raises(MissingDependency, match=r"'pyk4a'.*waterrock\[kinect\]"):
            next(iter(src))


def test_a_matroska_video_is_still_a_video(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "plain.mkv"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (W, H))
    for i in range(3):
        writer.write(np.full((H, W, 3), 40 * i, np.uint8))
    writer.release()
    src = open_source(path, loop=False)
    assert isinstance(src, OpenCVSource)
    assert len(list(src)) == 3
