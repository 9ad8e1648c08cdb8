"""Fixtures for the app tests: a small scene written here, a private Xvfb display, and an
offscreen OpenGL context (EGL; Mesa llvmpipe on CI)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.app.app_helpers import TINY_SCENE


@pytest.fixture(scope="session")
def tiny_scene(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("scenes") / "tiny.toml"
    p.write_text(TINY_SCENE, encoding="utf-8")
    return p


@pytest.fixture(scope="session")
def xvfb_display():
    """A private X display (Xvfb, 1280x720x24) for window tests; skipped without the Xvfb binary."""
    binary = shutil.which("Xvfb")
    if binary is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb): window tests need an X display")
    read_fd, write_fd = os.pipe()
    # -noreset: an X server resets when its last client leaves, and a window opened during the
    # reset fails ('X11: Failed to open display'), as the next test's did once in a full run
    proc = subprocess.Popen(
        [binary, "-displayfd", str(write_fd), "-screen", "0", "1280x720x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.close(write_fd)
    number = b""
    with os.fdopen(read_fd, "rb") as f:  # Xvfb writes the display number it chose, then a newline
        while not number.endswith(b"\n"):
            chunk = f.read(1)
            if not chunk:
                break
            number += chunk
    if not number.strip():
        proc.kill()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        pytest.fail(f"Xvfb did not start: {err.strip()[-500:]}")
    yield f":{number.decode().strip()}"
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
