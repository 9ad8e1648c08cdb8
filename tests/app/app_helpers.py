"""Helpers for the app tests: a small scene, and the ``waterrock`` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from waterrock.resources import REPO_ROOT

BOULDER = REPO_ROOT / "scenes" / "assets" / "boulder.obj"

# A small waterfall onto the boulder: ~1000 particles, a fixed substep, a 320x240 picture, no
# camera. A block of water starts above the rock, so the first frames already have lines.
TINY_SCENE = f"""
name = "tiny_waterfall"
[domain]
lower = [-0.6, -0.1, -0.25]
upper = [0.6, 1.1, 0.25]
[rock]
mesh = "{BOULDER.as_posix()}"
scale = 0.8
sdf_resolution = 24
[fluid]
particle_radius = 0.015
max_particles = 1500
[[fluid.blocks]]
lower = [-0.2, 0.6, -0.1]
upper = [0.2, 0.9, 0.1]
[[emitters]]
shape = "rect"
center = [0.0, 1.0, 0.0]
size = [0.1, 0.4]
speed = 1.0
[[sinks]]
lower = [-0.6, -0.1, -0.25]
upper = [0.6, 0.05, 0.25]
[solver]
method = "pbf"
frame_rate = 30.0
time_step = 0.01
[tracking]
source = "none"
[render]
resolution = [320, 240]
background = [0.010, 0.028, 0.070]
[render.rock]
color = [0.10, 0.09, 0.08]
contour_spacing = 0.0
[render.projection]
center = [0.0, 0.5, 0.0]
height = 1.3
"""


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 120):
    """``waterrock ARGS`` in a fresh interpreter, as an operator would start it; an env value of
    None removes that variable."""
    full_env = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = v
    return subprocess.run(
        [sys.executable, "-m", "waterrock.app.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


NO_DISPLAY = {"DISPLAY": None, "WAYLAND_DISPLAY": None}


def solver_and_view(scene):
    """The scene's solver on Taichi's CPU and its offscreen picture (app/session.OffscreenView);
    the test is skipped where no offscreen OpenGL context can be made."""
    import pytest

    from waterrock.app.session import OffscreenView
    from waterrock.solver.solver import Solver

    solver = Solver(scene, arch="cpu")
    try:
        view = OffscreenView(scene)
    except Exception as err:  # noqa: BLE001 - no EGL here: nothing to draw the picture with
        pytest.skip(f"no offscreen OpenGL: {err}")
    return solver, view
