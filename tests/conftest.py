"""Fixtures every test folder may use."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


@pytest.fixture(scope="module")
def gl_ctx():
    """An offscreen context for one test module, unbound after it (see release_context)."""
    from waterrock.render.target import release_context, standalone_context

    try:
        ctx = standalone_context()
    except Exception as err:  # noqa: BLE001 - no libEGL, no driver, no GL 3.3: nothing here can run
        pytest.skip(f"no standalone EGL OpenGL 3.3 context can be created: {err}")
    yield ctx
    release_context(ctx)


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
