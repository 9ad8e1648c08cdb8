"""The whole frame: app/loop.py's FrameLoop run headless on the default scene, ms per stage.

The loop steps one simulation frame per displayed frame (``realtime=False``, so the clock does
not drop frames) with the scene's obstacles (the tracker stepped with the simulation) and, when
an EGL context can be had, the renderer drawing offscreen; otherwise the render stages are 0 and
the result says why. Stage times come from the loop's own StageTimes with a window of one frame,
so every displayed frame is one sample.

With ``sizes`` (run_frame_sizes) the scene is run at its own size first, the baseline measured
in the same run, then made of finer or coarser particles (scaled_scene) for each particle count
asked for; each size's water is left to run undrawn until it is near steady, and the largest count a
60 fps frame holds is interpolated between the sizes measured (largest_within).
"""

from __future__ import annotations

import logging
import math

from waterrock.bench.solver import FRAME_BUDGET_MS
from waterrock.bench.stats import budget_crossing, summarize

log = logging.getLogger(__name__)

SETTLE_GROWTH = 0.03  # the water is near steady when it grows by less than this share in a simulated second
MAX_SDF_RESOLUTION = 256  # a scaled rock's SDF at most (256^3: 18 s and 0.3 GB to build, benchmarks/sdf.json)
SAME_SIZE = 1.1  # a size asked for within this factor of the scene's own is the baseline row itself


def _with_share(scene, share: float | None):
    """The scene with ``share`` of its particles drawing lines ([render.trails] share), validated."""
    if share is None:
        return scene
    from waterrock.scene import parse_scene

    trails = scene.render.trails.model_copy(update={"share": share})
    data = scene.model_copy(update={"render": scene.render.model_copy(update={"trails": trails})}).model_dump()
    return parse_scene(data, scene.path or "<scene>")


def scaled_scene(scene, particles: int, steady: int, max_sdf_resolution: int = MAX_SDF_RESOLUTION):
    """The scene's water made of about ``particles`` particles where at its own size its steady
    water holds ``steady``: the same water, in finer or coarser particles; validated as a loaded
    scene is (a SceneError when the scaled scene is not a usable one).

    The scaling law, with the volume factor f = particles / steady:

    - particle_radius * f^(-1/3): each particle holds 1/f of the volume it held;
    - max_particles * f (rounded up): the same headroom over the steady water;
    - each emitter's volume flow unchanged: an opening's particles a second are its speed * area /
      spacing^3 (solver/sources.py, layers of the lattice of the spacing over the opening), so they
      grow by f; an emitter's explicit ``rate`` is multiplied by f;
    - rock.sdf_resolution * f^(1/3) (rounded up) when f > 1: the SDF cell keeps the scene's ratio
      to the spacing; never lowered, at most ``max_sdf_resolution``.

    The domain, the rock, the solver's settings and the frame rate are the scene's own; the
    substeps a frame follow from its CFL condition, within its max_substeps, as always.
    """
    from waterrock.scene import parse_scene

    f = particles / steady
    fluid, rock = scene.fluid, scene.rock
    sdf = rock.sdf_resolution
    if f > 1.0:
        sdf = max(sdf, min(max_sdf_resolution, math.ceil(sdf * f ** (1.0 / 3.0))))
    scaled = scene.model_copy(update={
        "fluid": fluid.model_copy(update={"particle_radius": fluid.particle_radius * f ** (-1.0 / 3.0),
                                          "max_particles": math.ceil(fluid.max_particles * f)}),
        "rock": rock.model_copy(update={"sdf_resolution": sdf}),
        "emitters": [e if e.rate is None else e.model_copy(update={"rate": e.rate * f}) for e in scene.emitters],
    })
    return parse_scene(scaled.model_dump(), scene.path or "<scene>")


def largest_within(points: list[tuple[float, float]], budget_ms: float = FRAME_BUDGET_MS) -> dict:
    """The largest particle count whose frame takes at most ``budget_ms``, from (particles, ms)
    measured, interpolated (stats.budget_crossing) between the largest count within the budget and
    the next larger one past it. Never extrapolated: when every size is
    past the budget, or every size within it, the result says so and ``particles`` is None."""
    pts = sorted((float(n), float(ms)) for n, ms in points)
    under = [p for p in pts if p[1] <= budget_ms]
    if not under:
        return {"particles": None, "how": "below the smallest size measured", "bracket": None}
    lo = under[-1]
    over = [p for p in pts if p[0] > lo[0] and p[1] > budget_ms]
    if not over:
        return {"particles": None, "how": "above the largest size measured", "bracket": None}
    hi = over[0]
    n = budget_crossing(lo, hi, budget_ms)
    return {"particles": int(n), "how": "interpolated", "bracket": [int(lo[0]), int(hi[0])]}


def _settle(loop, solver, seconds: float) -> dict:
    """Step the loop undrawn, a simulated second at a time, until the water grows by less than
    SETTLE_GROWTH in a second, or for ``seconds`` (rounded up) at most."""
    frames = max(1, round(solver.scene.solver.frame_rate))
    view, loop.view = loop.view, None
    counts, settled = [], False
    try:
        for _ in range(max(1, math.ceil(seconds))):
            for _ in range(frames):
                loop.tick()
            counts.append(solver.n_active())
            if len(counts) > 1 and 0 < counts[-2] and counts[-1] - counts[-2] < SETTLE_GROWTH * counts[-2]:
                settled = True
                break
    finally:
        loop.view = view
    return {"settle_seconds": len(counts), "settled": settled, "settle_counts": counts}


def _measure(scene, frames: int, warmup: int, arch: str | None, draw: bool, resolution: tuple[int, int] | None,
             settle_seconds: float = 0.0) -> dict:
    from waterrock.app.loop import STAGES, FrameLoop
    from waterrock.app.session import Inputs, OffscreenView
    from waterrock.solver.solver import Solver

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
    settled = {}
    try:
        if settle_seconds > 0:
            settled = _settle(loop, solver, settle_seconds)
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
        "substeps_per_frame": loop.last_stats.get("substeps"), **settled,
    }


def run_frame(scene_name: str = "default", frames: int = 120, warmup: int = 30, arch: str | None = None,
              draw: bool = True, resolution: tuple[int, int] | None = None, share: float | None = None) -> dict:
    from waterrock.scene import load_scene

    return _measure(_with_share(load_scene(scene_name), share), frames, warmup, arch, draw, resolution)


def run_frame_sizes(scene_name: str, sizes: list[int], frames: int = 120, warmup: int = 30, arch: str | None = None,
                    draw: bool = True, resolution: tuple[int, int] | None = None, share: float | None = None,
                    settle_seconds: float = 8.0, steady: int | None = None, log=print) -> dict:
    """The frame at each particle count of ``sizes`` (scaled_scene), after the scene at its own
    size, the baseline, whose steady water sets the scaling; ``steady`` given: no baseline row, the
    sizes scaled from it. Each size runs undrawn until near steady (at most ``settle_seconds``
    simulated), then ``warmup`` drawn frames, then ``frames`` timed. The result is the first row's
    (the single-size result) with every row under "sizes" and the largest count at 60 fps, on the
    whole frame and on its solve stage alone."""
    from waterrock.scene import load_scene

    scene = _with_share(load_scene(scene_name), share)
    rows = []

    def row(s, requested):
        log(f"  {s.name}: {'its own size' if requested is None else f'N={requested}'}, particle radius "
            f"{s.fluid.particle_radius:.4g} m, max_particles {s.fluid.max_particles}, SDF {s.rock.sdf_resolution} ...")
        r = _measure(s, frames, warmup, arch, draw, resolution, settle_seconds)
        st = r["stages"]
        log(f"    {r['particles']} particles after {r['settle_seconds']:g} s ({'settled' if r['settled'] else 'cap'}): "
            f"solve {st['solve']['median_ms']:.1f} ms, render {st['render']['median_ms']:.1f} ms, "
            f"total {st['total']['median_ms']:.1f} ms")
        rows.append({**r, "requested": requested, "particle_radius": s.fluid.particle_radius,
                     "max_particles": s.fluid.max_particles, "sdf_resolution": s.rock.sdf_resolution})

    if steady is None:
        row(scene, None)
        steady = rows[0]["particles"]
    for n in sizes:
        if rows and rows[0]["requested"] is None and abs(math.log(n / steady)) < math.log(SAME_SIZE):
            log(f"  N={n}: within {SAME_SIZE:g}x of the scene's own {steady}, its row stands for it")
            continue
        row(scaled_scene(scene, n, steady), n)
    largest = {stage: {**largest_within([(r["particles"], r["stages"][stage]["median_ms"]) for r in rows]),
                       "budget_ms": FRAME_BUDGET_MS} for stage in ("total", "solve")}
    return {**rows[0], "share": scene.render.trails.share, "steady_reference": steady,
            "settle_cap_s": settle_seconds, "sizes": rows, "largest_at_60fps": largest}


def _largest_text(m: dict) -> str:
    if m["particles"] is None:
        return m["how"]
    return f"~{m['particles']} (interpolated log-log between {m['bracket'][0]} and {m['bracket'][1]})"


def sizes_table(result: dict) -> str:
    rows = result["sizes"]
    first = rows[0]
    where = (f"drawn offscreen at {first['resolution'][0]}x{first['resolution'][1]}" if first["drawn"]
             else f"not drawn ({first['no_view_reason']})")

    def per_particle(r, stage):
        return r["stages"][stage]["median_ms"] / r["particles"]

    lines = [f"frame loop by size, scene {first['scene']}, {where}, lines for {result['share']:g} of the particles; "
             f"each size run undrawn until its water grows < {100 * SETTLE_GROWTH:g} % a simulated second (at most "
             f"{result['settle_cap_s']:g} s), then median of {first['frames']} frames after {first['warmup']}; "
             f"ms a particle relative to the first row",
             f"{'asked':>8}{'particles':>10}{'radius m':>10}{'substeps':>9}{'solve ms':>10}{'render ms':>10}"
             f"{'total ms':>10}{'fps':>7}{'solve/p':>9}{'total/p':>9}"]
    for r in rows:
        st = r["stages"]
        asked = "own" if r["requested"] is None else str(r["requested"])
        lines.append(f"{asked:>8}{r['particles']:>10}{r['particle_radius']:>10.4f}{r['substeps_per_frame'] or 0:>9}"
                     f"{st['solve']['median_ms']:>10.2f}{st['render']['median_ms']:>10.2f}"
                     f"{st['total']['median_ms']:>10.2f}{1e3 / st['total']['median_ms']:>7.1f}"
                     f"{per_particle(r, 'solve') / per_particle(first, 'solve'):>8.2f}x"
                     f"{per_particle(r, 'total') / per_particle(first, 'total'):>8.2f}x")
    m = result["largest_at_60fps"]
    lines.append(f"largest at 60 fps ({m['total']['budget_ms']:.1f} ms): whole frame {_largest_text(m['total'])}; "
                 f"solve alone {_largest_text(m['solve'])}")
    return "\n".join(lines)


def table(result: dict) -> str:
    if result.get("sizes"):
        return sizes_table(result)
    where = (f"drawn offscreen at {result['resolution'][0]}x{result['resolution'][1]}" if result["drawn"]
             else f"not drawn ({result['no_view_reason']})")
    lines = [f"frame loop, scene {result['scene']}: {result['particles']} particles, {where}; "
             f"median of {result['frames']} frames after {result['warmup']}",
             f"{'stage':<10}{'median ms':>10}{'IQR':>8}{'min':>8}{'max':>8}"]
    for name, st in result["stages"].items():
        lines.append(f"{name:<10}{st['median_ms']:>10.2f}{st['iqr_ms']:>8.2f}{st['min_ms']:>8.2f}{st['max_ms']:>8.2f}")
    return "\n".join(lines)
