"""The whole frame: app/loop.py's FrameLoop run headless on the default scene, ms per stage.

The loop steps one simulation frame per displayed frame (``realtime=False``, so the clock does
not drop frames) with the scene's obstacles (the tracker stepped with the simulation) and, when
an EGL context can be had, the renderer drawing offscreen; otherwise the render stages are 0 and
the result says why. Stage times come from the loop's own StageTimes with a window of one frame,
so every displayed frame is one sample.
"""

from __future__ import annotations

import logging

from waterrock.bench.stats import summarize

log = logging.getLogger(__name__)


def run_frame(scene_name: str = "default", frames: int = 120, warmup: int = 30, arch: str | None = None,
              draw: bool = True, resolution: tuple[int, int] | None = None) -> dict:
    from waterrock.app.loop import STAGES, FrameLoop
    from waterrock.app.session import Inputs, OffscreenView
    from waterrock.scene import load_scene
    from waterrock.solver.solver import Solver

    scene = load_scene(scene_name)
    solver = Solver(scene, arch=arch)
    view, no_view = None, None
    if draw:
        try:
            view = OffscreenView(scene, size=resolution)
        except Exception as err:  # noqa: BLE001 - no EGL: the solver's stages are still measured
            no_view = f"{type(err).__name__}: {err}"
    inputs = Inputs(scene, solver, stepped=True)
    loop = FrameLoop(solver, inputs.obstacles, view, realtime=False, stats_window=1)
    samples: dict[str, list[float]] = {name: [] for name in (*STAGES, "total")}
    try:
        for _ in range(warmup):
            loop.tick()
        for _ in range(frames):
            loop.tick()
            ms = loop.times.ms()
            for name in STAGES:
                samples[name].append(ms[name])
            samples["total"].append(sum(ms.values()))
    finally:
        inputs.close()
        if view is not None:
            view.release()
    return {
        "scene": scene.name, "frames": frames, "warmup": warmup, "particles": loop.particles or solver.n_active(),
        "resolution": list(view.size) if view is not None else None, "drawn": view is not None,
        "no_view_reason": no_view, "stages": {k: summarize(v) for k, v in samples.items()},
        "substeps_per_frame": loop.last_stats.get("substeps"),
    }


def table(result: dict) -> str:
    where = (f"drawn offscreen at {result['resolution'][0]}x{result['resolution'][1]}" if result["drawn"]
             else f"not drawn ({result['no_view_reason']})")
    lines = [f"frame loop, scene {result['scene']}: {result['particles']} particles, {where}; "
             f"median of {result['frames']} frames after {result['warmup']}",
             f"{'stage':<10}{'median ms':>10}{'IQR':>8}{'min':>8}{'max':>8}"]
    for name, st in result["stages"].items():
        lines.append(f"{name:<10}{st['median_ms']:>10.2f}{st['iqr_ms']:>8.2f}{st['min_ms']:>8.2f}{st['max_ms']:>8.2f}")
    return "\n".join(lines)
