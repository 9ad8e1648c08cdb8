"""The frame-rate governor (app/governor.py) measured: a scene's displayed frame rate with it and
without it, run after run in one process on this machine, and what the console's services
cost a frame beside it.

Each run is the app's own real-time loop (``FrameLoop`` at the scene's clock, frames dropped
when it falls behind), its visitors from the live tracker, drawn offscreen at the scene's
resolution or ``resolution`` (the window adds only the buffer swap): ``seconds`` after the first
frame shown, a sample a second of the frames shown, the share of the water's time dropped and
the governor's level. The runs alternate (off, on, off, on, ...) so that a machine that grows
busier halfway hurts both alike; the figures are the medians over each run's second half, by
when the governor has settled. With the governor the console's services (OSC control, the
status page) are open on the scene's ports, and their calls from the frame loop (``on_frame``
before each frame, ``on_second`` each second) are timed: their cost a frame (goal: 0.2 ms).
"""

from __future__ import annotations

import time

import numpy as np

GOAL_FPS = 30.0  # issue 25: held on 2 cores with software GL, the default scene
GOAL_CONSOLE_MS = 0.2  # the status page and OSC together, a frame


class _Timed:
    """A console service whose frame-loop calls are timed (seconds, summed)."""

    def __init__(self, service):
        self.service, self.spent, self.calls = service, 0.0, 0

    def on_frame(self, loop) -> None:
        t0 = time.perf_counter()
        self.service.on_frame(loop)
        self.spent += time.perf_counter() - t0
        self.calls += 1

    def on_second(self, loop) -> None:
        t0 = time.perf_counter()
        self.service.on_second(loop)
        self.spent += time.perf_counter() - t0

    def close(self) -> None:
        self.service.close()


def run_once(scene_name: str, seconds: float, governed: bool, arch: str | None = None,
             resolution: tuple[int, int] | None = None) -> dict:
    """One run of the real-time loop; per-second samples and their medians over the second half."""
    from waterrock.app.console import close_console, open_console
    from waterrock.app.loop import FrameLoop
    from waterrock.app.session import Inputs, OffscreenView, open_governor
    from waterrock.scene import load_scene
    from waterrock.solver.solver import Solver

    scene = load_scene(scene_name)
    if not governed:
        scene = scene.model_copy(update={"governor": scene.governor.model_copy(update={"enabled": False})})
    solver = Solver(scene, arch=arch)
    view = OffscreenView(scene, size=resolution)
    inputs = Inputs(scene, solver)
    console = [_Timed(s) for s in open_console(scene, view, inputs)] if governed else []
    loop = FrameLoop(solver, inputs.obstacles, view, console=console)
    loop.governor = open_governor(scene, view.renderer, lambda: loop.solver)
    samples: list[dict] = []
    last = [None]

    def second(lp) -> None:
        now, shown, dropped = time.perf_counter(), lp.frames_shown, lp.dropped
        if last[0] is not None:
            t, s, d = last[0]
            elapsed = now - t
            g = lp.governor
            samples.append({"fps": (shown - s) / elapsed,
                            "water_dropped": min(1.0, (dropped - d) * lp.sim_dt / elapsed),
                            "level": g.index if g is not None else 0,
                            "scale": g.level.scale if g is not None else 1.0,
                            "trails": g.level.trails if g is not None else 1.0,
                            "water": g.level.water if g is not None else 1.0})
        last[0] = (now, shown, dropped)

    try:
        rc = loop.run(seconds=seconds, every_second=second, handle_signals=False)
    finally:
        close_console(console)
        inputs.close()
        view.release()
    if rc != 0:
        raise RuntimeError(f"the frame loop stopped: {loop.error}")
    half = samples[len(samples) // 2:] or samples
    out = {"scene": scene.name, "governed": governed, "seconds": seconds, "resolution": list(view.size),
           "particles": loop.particles, "samples": samples,
           "target_fps": scene.governor.target(scene.solver.frame_rate),
           **{f"{k}_median": float(np.median([s[k] for s in half])) if half else None
              for k in ("fps", "water_dropped", "scale", "trails", "water")}}
    if console:
        frames = max(1, sum(c.calls for c in console) // len(console))
        out["console_ms_per_frame"] = 1e3 * sum(c.spent for c in console) / frames
        out["console_services"] = [type(c.service).__name__ for c in console]
    return out


def run_benchmark(scene_name: str = "default", seconds: float = 20.0, repeat: int = 1, arch: str | None = None,
                  resolution: tuple[int, int] | None = None, log=print) -> dict:
    from waterrock.backend import init_backend

    arch = init_backend(arch)
    runs = {"off": [], "on": []}
    for k in range(repeat):
        for governed in (False, True):
            key = "on" if governed else "off"
            log(f"governor {key}, run {k + 1} of {repeat}: {scene_name}, {seconds:g} s")
            runs[key].append(run_once(scene_name, seconds, governed, arch, resolution))
    summary = {key: {f: float(np.median([r[f] for r in rs])) for f in ("fps_median", "water_dropped_median")}
               for key, rs in runs.items()}
    on = runs["on"]
    console = [r["console_ms_per_frame"] for r in on if "console_ms_per_frame" in r]
    return {"scene": on[0]["scene"], "arch": arch, "seconds": seconds, "repeat": repeat, "runs": runs,
            "summary": summary, "speedup": summary["on"]["fps_median"] / max(summary["off"]["fps_median"], 1e-9),
            "goal_fps": GOAL_FPS, "goal_met": summary["on"]["fps_median"] >= GOAL_FPS,
            "console_ms_per_frame": float(np.median(console)) if console else None,
            "goal_console_ms": GOAL_CONSOLE_MS}


def table(result: dict) -> str:
    lines = [f"frame-rate governor, scene {result['scene']} ({result['arch']}), {result['seconds']:g} s a run, "
             f"{result['repeat']} run(s) each, alternating; medians over each run's second half",
             f"{'governor':<10}{'fps':>7}{'water dropped':>15}{'scale':>7}{'trails':>8}{'water':>7}"]
    for key, runs in result["runs"].items():
        for r in runs:
            lines.append(f"{key:<10}{r['fps_median']:>7.1f}{r['water_dropped_median']:>15.0%}{r['scale_median']:>7.2f}"
                         f"{r['trails_median']:>8.2f}{r['water_median']:>7.2f}")
    s = result["summary"]
    lines.append(f"with the governor {s['on']['fps_median']:.1f} fps against {s['off']['fps_median']:.1f} without "
                 f"({result['speedup']:.2f}x); goal >= {result['goal_fps']:g} fps: "
                 f"{'met' if result['goal_met'] else 'not met'}")
    c = result["console_ms_per_frame"]
    lines.append("console (OSC control, status page): " + ("not open (ports taken?)" if c is None else
                 f"{c:.3f} ms a frame; goal <= {result['goal_console_ms']:g} ms: "
                 f"{'met' if c <= result['goal_console_ms'] else 'not met'}"))
    return "\n".join(lines)
