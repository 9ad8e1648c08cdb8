"""Sources: specs, missing optional packages and devices fail clearly, synthetic truth is exact."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from waterrock.tracking.runner import TrackerRunner
from waterrock.tracking.settings import TrackingSettings
from waterrock.tracking.sources import (
    DepthRecordingSource,
    DeviceNotFound,
    KinectSource,
    MissingDependency,
    NullSource,
    OpenCVSource,
    RealSenseSource,
    SourceError,
    open_source,
)
from waterrock.tracking.synthetic import SyntheticSource


@pytest.mark.parametrize(
    ("cls", "module", "extra"),
    [
        (RealSenseSource, "pyrealsense2", "realsense"),
        (KinectSource, "pyk4a", "kinect"),
    ],
)
def test_missing_sensor_package_is_named(monkeypatch, cls, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # what Python does when a package is absent
    with pytest.raises(MissingDependency, match=rf"'{module}'.*waterrock\[{extra}\]"):
        next(iter(cls()))


def test_runner_reports_the_missing_package_and_keeps_trying(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)
    settings = TrackingSettings(source="realsense", reconnect_initial=0.02, reconnect_max=0.05)
    with TrackerRunner.from_settings(settings) as runner:
        end = time.monotonic() + 5
        while runner.state().reconnects < 3 and time.monotonic() < end:
            time.sleep(0.01)
        st = runner.state()
    assert st.status in ("reconnecting", "stopped") and st.reconnects >= 3
    assert "pyrealsense2" in st.last_error
    assert len(runner.latest()) == 0


def test_camera_that_is_not_there_is_device_not_found():
    with pytest.raises(DeviceNotFound, match="camera 97"):
        next(iter(OpenCVSource(97)))


def test_missing_files_are_named(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        open_source(f"video:{tmp_path / 'nope.mp4'}")
    with pytest.raises(SourceError, match="not found"):
        DepthRecordingSource(tmp_path / "nope.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="timestamps.txt"):
        DepthRecordingSource(tmp_path / "empty")


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("synthetic", SyntheticSource),
        ("synthetic:crossing", SyntheticSource),
        ("none", NullSource),
        ("camera:2", OpenCVSource),
        ("0", OpenCVSource),
        ("rtsp://10.0.0.5/depth", OpenCVSource),
        ("realsense", RealSenseSource),
        ("kinect", KinectSource),
        ("orbbec", KinectSource),
    ],
)
def test_source_specs(spec, kind):
    assert isinstance(open_source(spec), kind)


def test_unknown_spec_lists_the_choices():
    with pytest.raises(ValueError, match="synthetic.*camera:N"):
        open_source("webcam please")


def test_synthetic_depth_is_exact_where_nobody_stands():
    src = SyntheticSource("walk", noise_mm=0.0, dropout=0.0, loop=False)
    d = src.render_depth_m(0)
    # the floor straight below a camera 5 m up is 5 m away; a 1.75 m tall head is 3.25 m away
    uv, depth = src.calibration.world_to_pixel([(0.0, 0.0, 0.0)])
    assert abs(d[int(round(uv[0, 1])), int(round(uv[0, 0]))] - 5.0) < 1e-3
    (truth,) = src.truth(60)
    head = truth.position + [0.0, truth.height, 0.0]
    uv, z = src.calibration.world_to_pixel(head)
    (u, v), z = uv[0], z[0]
    assert 0 <= u < 640 and 0 <= v < 480
    assert abs(src.render_depth_m(60)[int(round(v)), int(round(u))] - z) < 0.005  # depth is along the axis


def test_synthetic_truth_velocity_is_the_derivative_of_position():
    src = SyntheticSource("gather")
    for i in (10, 75, 200):
        for p in src.script.people:
            t = src.script_time(i)
            np.testing.assert_allclose(
                p.velocity(t), (p.position(t + 1e-4) - p.position(t - 1e-4)) / 2e-4, atol=1e-6
            )
