"""The tracker process beside a busy solver: it keeps its source's rate (DESIGN.md: a thread got
about 1/20 of its loops beside Taichi's CPU kernels)."""

from __future__ import annotations

import time

from waterrock.app.session import Inputs
from waterrock.scene import load_scene, parse_scene
from waterrock.solver.solver import Solver
from waterrock.tracking.process import TrackerProcess

FPS = 15
WINDOW = 8.0  # s measured, after the tracker's first frame


def test_tracker_process_keeps_its_sources_rate_beside_a_busy_solver():
    # the default scene: its step holds the interpreter lock long enough that a tracker thread got
    # 58 % of a 15 fps source beside it on 2 cores (93 % beside the tiny scene's)
    scene = load_scene("default")
    solver = Solver(scene, arch="cpu")
    tracking = scene.tracking.model_copy(
        update={"source": "synthetic", "synthetic_script": "walk", "width": 320, "height": 240, "fps": FPS}
    )
    steps = 0
    with TrackerProcess(tracking) as tp:
        end = time.monotonic() + 60.0
        while tp.state().frames == 0 and time.monotonic() < end:  # the child imports and opens its source
            solver.step(1.0 / 30.0)
        assert tp.state().frames > 0, tp.state()
        first, t0 = tp.state().frames, time.monotonic()
        while time.monotonic() - t0 < WINDOW:
            solver.step(1.0 / 30.0)  # Taichi's CPU kernels on every core, the GIL held in between
            steps += 1
        delivered = tp.state().frames - first
        elapsed = time.monotonic() - t0
    assert steps > 10, "the solver did not keep the machine busy"
    share = delivered / (elapsed * FPS)
    assert share >= 0.9, f"the tracker process got {delivered} of {elapsed * FPS:.0f} frames ({share:.0%})"


def test_inputs_put_a_live_tracker_in_its_own_process():
    scene = parse_scene({"domain": {"lower": [0, 0, 0], "upper": [1, 1, 1]},
                         "tracking": {"source": "synthetic", "width": 160, "height": 120}})
    inputs = Inputs(scene)
    try:
        assert isinstance(inputs.runner, TrackerProcess)
        assert inputs.tracker_state().startswith("tracker: ")
    finally:
        inputs.close()
    threaded = scene.model_copy(update={"tracking": scene.tracking.model_copy(update={"process": False})})
    inputs = Inputs(threaded)
    try:
        assert not isinstance(inputs.runner, TrackerProcess)
    finally:
        inputs.close()
