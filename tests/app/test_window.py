"""`waterrock run` in a real glfw window on a private Xvfb display, checked by its screenshot."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from tests.app.app_helpers import run_cli

pytestmark = pytest.mark.gl


def test_run_window_screenshot_shows_water_over_rock(tiny_scene, xvfb_display, tmp_path):
    shot = tmp_path / "out.png"
    log_file = tmp_path / "logs" / "waterrock.log"
    env = {"DISPLAY": xvfb_display, "WAYLAND_DISPLAY": None}
    r = run_cli(
        "--log-file",
        str(log_file),
        "-v",
        "run",
        "--scene",
        str(tiny_scene),
        "--arch",
        "cpu",
        "--seconds",
        "3",
        "--size",
        "320",
        "240",
        "--screenshot",
        str(shot),
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "running headless" not in r.stderr, "a window should have opened on the Xvfb display"
    assert shot.is_file(), r.stdout + r.stderr
    img = cv2.imread(str(shot))[:, :, ::-1].astype(int)  # RGB
    assert img.shape == (240, 320, 3)

    background = np.round(np.array([0.010, 0.028, 0.070]) * 255)
    is_bg = np.all(np.abs(img - background) <= 3, axis=-1)
    # pale blue water lines, bright against the dark blue background (thin at 240 lines: their
    # coverage is folded into the opacity, so a line pixel is dimmer than the line colour)
    lines = (img.max(axis=-1) >= 45) & (img[..., 2] > img[..., 0] + 5)
    rock_rgb = img[(np.abs(img - np.array([0.10, 0.09, 0.08]) * 255).max(axis=-1) <= 12) & ~is_bg]
    assert is_bg.mean() > 0.5, f"background should dominate, got {is_bg.mean():.2f}"
    assert lines.sum() > 300, f"too few bright line pixels: {lines.sum()}"
    assert len(rock_rgb) > 300, f"too few rock-coloured pixels: {len(rock_rgb)}"
    # the water is drawn where it falls: bright pixels in the upper middle (the stream) and
    # around the rock, not in the empty corners
    assert lines[:, 100:220].sum() > 0.5 * lines.sum()

    text = log_file.read_text(encoding="utf-8")
    assert "window 320x240" in text and "screenshot saved" in text


def test_run_window_overlay(tiny_scene, xvfb_display, tmp_path):
    """--overlay starts with the debug and help panels: text pixels top-left and top-right."""
    shot = tmp_path / "overlay.png"
    env = {"DISPLAY": xvfb_display}
    r = run_cli(
        "run",
        "--scene",
        str(tiny_scene),
        "--arch",
        "cpu",
        "--seconds",
        "1",
        "--size",
        "640",
        "400",
        "--overlay",
        "--screenshot",
        str(shot),
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    img = cv2.imread(str(shot))
    panel_left, panel_right = img[10:60, 10:200], img[10:60, -200:-10]
    for panel in (panel_left, panel_right):
        assert (panel.max(axis=-1) > 200).sum() > 50  # white text
    assert os.path.getsize(shot) > 0


def test_sigterm_stops_the_window_cleanly(tiny_scene, xvfb_display, tmp_path):
    """systemctl stop: SIGTERM ends the frame loop, the window closes, exit status 0."""
    import signal
    import subprocess
    import sys
    import time

    log_file = tmp_path / "w.log"
    env = {k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"}
    env["DISPLAY"] = xvfb_display
    cmd = [
        sys.executable,
        "-m",
        "waterrock.app.cli",
        "--log-file",
        str(log_file),
        "-v",
        "run",
        "--scene",
        str(tiny_scene),
        "--arch",
        "cpu",
        "--size",
        "160",
        "120",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if log_file.exists() and "first frame shown" in log_file.read_text():
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    text = log_file.read_text()
    assert "received SIGTERM" in text and "stopped after" in text
