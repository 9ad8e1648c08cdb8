"""``waterrock calibrate --auto`` / ``--check``: end to end on the simulated rig in a
subprocess, the venue's rig (fullscreen outputs and a camera source) under Xvfb, and the
set-up faults an operator meets, each named."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from waterrock.app.calibrate_auto import (
    CalibrationUsageError,
    NightlyCheck,
    ScreenRig,
    run_auto,
    tracker_camera,
    write_tracker_pose,
)
from waterrock.procam import graycode
from waterrock.procam.model import Pinhole
from waterrock.resources import REPO_ROOT
from waterrock.scene import load_scene
from waterrock.tracking.calibrate import (
    DepthCalibration,
    FloorHomography,
    Intrinsics,
    load_calibration,
    save_calibration,
)
from waterrock.tracking.sources import open_source

DEFAULT = REPO_ROOT / "scenes" / "default.toml"


def _waterrock(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "waterrock.app.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})


@pytest.mark.gl
def test_auto_then_check_on_the_simulated_rig(tmp_path):
    out = tmp_path / "venue.procam.json"
    r = _waterrock("calibrate", "--auto", "--rig", "virtual", "--scene", str(DEFAULT), "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    rms = [float(x) for x in re.findall(r"reprojection ([0-9.]+) px RMS", r.stdout)]
    assert len(rms) == 2 and max(rms) <= 0.5, r.stdout
    data = json.loads(out.read_text())
    assert data["kind"] == "procam" and set(data["outputs"]) == {"0", "1"}
    residual = cv2.imread(str(tmp_path / "venue.procam.output0.residual.png"))
    assert residual is not None and residual.shape == (720, 1280, 3)

    r = _waterrock("calibrate", "--check", "--rig", "virtual", "--scene", str(DEFAULT), "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert all(float(x) < 0.3 for x in re.findall(r"drift ([0-9.]+) px median", r.stdout)), r.stdout

    r = _waterrock("calibrate", "--check", "--rig", "virtual", "--scene", str(DEFAULT), "--out", str(out),
                   "--drift-px", "2")
    assert r.returncode == 1, r.stdout + r.stderr
    moved = float(re.search(r"output 0: drift ([0-9.]+) px median", r.stdout).group(1))
    assert abs(moved - 2.0) <= 0.5 and "over the scene's 1 px" in r.stdout
    assert "calibration check: output 0" in r.stderr  # logged as a warning too


def test_the_tracker_takes_the_camera_pose_solved_on_the_rock(tmp_path):
    intrinsics = Intrinsics.from_fov(640, 480, 70)
    rough = DepthCalibration.look_at(intrinsics, [0.1, 1.6, 1.5], [0, 0.3, 0])
    path = tmp_path / "venue.calibration.json"
    save_calibration(rough, path)
    scene = load_scene(DEFAULT)
    scene = scene.model_copy(update={"tracking": scene.tracking.model_copy(update={"calibration": path})})
    rough_camera = tracker_camera(scene)
    assert np.allclose(rough_camera.centre, [0.1, 1.6, 1.5]) and np.allclose(rough_camera.K, intrinsics.matrix())
    solved = Pinhole.looking_at((640, 480), 70, [0.12, 1.58, 1.52], [0, 0.31, 0])
    write_tracker_pose(scene, solved)
    refined = load_calibration(path)
    assert np.allclose(refined.translation, solved.centre) and np.allclose(refined.rotation, solved.R.T)
    assert refined.intrinsics == intrinsics
    assert np.allclose(load_calibration(tmp_path / "venue.calibration.previous.json").translation, [0.1, 1.6, 1.5])


def test_operator_faults_are_named(tmp_path):
    r = _waterrock("calibrate", "--check", "--rig", "virtual", "--scene", str(DEFAULT),
                   "--out", str(tmp_path / "none.json"))
    assert r.returncode == 2 and "projector calibration not found (run `waterrock calibrate --auto`)" in r.stderr
    r = _waterrock("calibrate", "--auto", "--drift-px", "2", "--rig", "virtual", "--scene", str(DEFAULT))
    assert r.returncode == 2 and "--drift-px moves the simulated rig's output" in r.stderr
    r = _waterrock("calibrate", "--scene", str(DEFAULT))
    assert r.returncode == 2 and "calibrate needs --source" in r.stderr
    r = _waterrock("calibrate", "--auto", "--scene", str(DEFAULT))  # no display here
    assert r.returncode == 2 and "--rig virtual runs the simulated rig" in r.stderr

    scene = load_scene(DEFAULT)
    with pytest.raises(CalibrationUsageError, match="calibrate the tracker's depth camera first"):
        tracker_camera(scene)
    floor = tmp_path / "floor.json"
    save_calibration(FloorHomography.from_image_size(640, 480, 4.0), floor)
    tracking = scene.tracking.model_copy(update={"calibration": floor})
    with pytest.raises(CalibrationUsageError, match="a floor homography has no camera pose"):
        tracker_camera(scene.model_copy(update={"tracking": tracking}))
    no_rock = scene.model_copy(update={"rock": scene.rock.model_copy(update={"mesh": None})})
    with pytest.raises(CalibrationUsageError, match="no \\[rock\\] mesh"):
        run_auto(no_rock, rig="virtual", out=tmp_path / "x.json")


@pytest.mark.gl
def test_the_screen_rig_shows_patterns_fullscreen_and_waits_for_the_camera(xvfb_display, monkeypatch, tmp_path):
    monkeypatch.setenv("DISPLAY", xvfb_display)
    video = tmp_path / "camera.avi"  # a colour camera: a video file played at its own rate
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (320, 240))
    for k in range(30):
        writer.write(np.full((240, 320, 3), 8 * k, np.uint8))
    writer.release()
    scene = load_scene(DEFAULT)
    rig = ScreenRig(scene, open_source(f"video:{video}", realtime=True), settle=0.1)
    try:
        size = rig.sizes[0]
        assert size == (1280, 720)
        pattern = graycode.patterns(size)[4]
        rig.show(0, pattern)
        shown = rig.read_output(0)
        assert np.array_equal(shown[:, :, 0], pattern)  # every projector pixel as the pattern has it
        frame = rig.grab()
        assert frame.shape == (240, 320) and frame.dtype == np.uint8
        assert rig.camera.arrived >= rig.shown + 0.1  # taken only once the pattern had settled
        with pytest.raises(ValueError, match="output 0 is 1280x720: a 640x480 pattern does not fit it"):
            rig.show(0, np.zeros((480, 640), np.uint8))
    finally:
        rig.close()


class _Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def test_the_nightly_check_is_due_once_a_night_and_never_at_start():
    import datetime

    scene = load_scene(DEFAULT)
    scene = scene.model_copy(update={"projection": scene.projection.model_copy(update={"check_time": "03:30"})})
    clock = _Clock(datetime.datetime(2026, 12, 7, 4, 0))  # started after the time: not tonight
    check = NightlyCheck(scene, None, None, clock=clock)
    runs = []
    check.run = lambda: runs.append(clock.now)
    for minutes in range(0, 24 * 60 * 2, 1):  # two days, a call a minute
        clock.now = datetime.datetime(2026, 12, 7, 4, 0) + datetime.timedelta(minutes=minutes)
        check()
    assert runs == [datetime.datetime(2026, 12, 8, 3, 30), datetime.datetime(2026, 12, 9, 3, 30)]


@pytest.mark.gl
def test_the_nightly_check_borrows_the_windows_and_the_camera_and_gives_them_back(
        xvfb_display, monkeypatch, tmp_path, caplog):
    import datetime
    import logging

    from waterrock.app.projection import Outputs, outputs_for
    from waterrock.app.session import Inputs
    from waterrock.procam.model import OutputCalibration, ProcamCalibration, save_procam

    monkeypatch.setenv("DISPLAY", xvfb_display)
    video = tmp_path / "camera.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (320, 240))
    for k in range(30):
        writer.write(np.full((240, 320, 3), 8 * k, np.uint8))
    writer.release()
    scene = load_scene(DEFAULT)
    calibration = tmp_path / "venue.procam.json"
    device = Pinhole.looking_at((1280, 720), 40, [0.3, 2.0, 1.2], [0, 0.3, 0])
    dots = np.array([[100.0, 100], [200, 100], [100, 200], [200, 200], [150, 150]])
    save_procam(ProcamCalibration(device, {0: OutputCalibration(device, 0.2, dots, dots)}), calibration)
    scene = scene.model_copy(update={
        "tracking": scene.tracking.model_copy(update={"source": "video", "path": video}),
        "projection": scene.projection.model_copy(update={"check_time": "03:30", "calibration": calibration}),
    })
    outputs = Outputs(outputs_for(scene.projection, None))
    inputs = Inputs(scene)
    try:
        before = inputs.runner
        clock = _Clock(datetime.datetime(2026, 12, 7, 3, 29, 59))
        check = NightlyCheck(scene, outputs, inputs, clock=clock, settle=0.05)
        clock.now = datetime.datetime(2026, 12, 7, 3, 30, 0)
        with caplog.at_level(logging.INFO):
            check()
        # the video shows no dots: the drift cannot be measured, and the log says so
        assert check.report is not None and not check.report[0].measured
        assert "nightly calibration check: output 0: drift not measured" in caplog.text
        assert inputs.runner is not before and inputs.runner in inputs.obstacles.providers
        assert before not in inputs.obstacles.providers
        deadline = time.monotonic() + 20
        while inputs.runner.state().status != "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert inputs.runner.state().status == "running"  # the tracker has its camera again
    finally:
        inputs.close()
        outputs.close()
