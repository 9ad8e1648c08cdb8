"""Solver benchmark: per method and N, ms per substep, particle-substeps per second and density
error; the default scene's real-time factor; the largest N a 60 fps PBF frame keeps up with.

The baseline, measured in the same run on the same particles, is a vectorised numpy/scipy
WCSPH substep (a k-d tree neighbour search and the same cubic kernel and Tait equation): the
plain-Python way a developer would write the step, so the ratio says what Taichi buys here,
and, being measured in the same run, it is what the regression guard compares.
"""

from __future__ import annotations

import math
import time

import numpy as np

from waterrock.bench.cases import DamBreak
from waterrock.bench.stats import budget_crossing, summarize, time_calls

METHODS = ("pbf", "dfsph", "wcsph")
FRAME_BUDGET_MS = 1000.0 / 60.0
BASELINE_MAX_N = 64_000  # the numpy step takes seconds beyond this
CALL_MS = 50.0  # wall time a timed call of substeps may take (see substeps_per_call)


def _sync() -> None:
    import taichi as ti

    ti.sync()


def _numpy_wcsph_substep(x, v, h, mass, rho0, B, gamma, dt, lower, upper):
    from scipy.spatial import cKDTree

    from waterrock.solver.kernels import cubic_gradW_np, cubic_W_np

    pairs = cKDTree(x).query_pairs(h, output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    r = x[i] - x[j]
    w = mass * cubic_W_np(np.linalg.norm(r, axis=1), h)
    n = len(x)
    rho = mass * cubic_W_np(0.0, h) + np.bincount(i, w, n) + np.bincount(j, w, n)
    p = np.maximum(B * ((rho / rho0) ** gamma - 1.0), 0.0)
    k = p / rho**2
    f = (mass * (k[i] + k[j]))[:, None] * cubic_gradW_np(r, h)
    a = np.stack([np.bincount(j, f[:, c], n) - np.bincount(i, f[:, c], n) for c in range(3)], axis=1)
    a[:, 1] -= 9.81
    v = v + dt * a
    x = np.clip(x + dt * v, lower, upper)
    return x, v


def bench_baseline(n: int, repeat: int) -> dict:
    case = DamBreak(n, "wcsph")
    x = case.positions().astype(np.float64)
    state = {"x": x, "v": np.zeros_like(x)}
    args = (4 * case.radius, case.rest_density * case.spacing**3, case.rest_density, case.stiffness, case.exponent,
            case.time_step, np.array(case.lower), np.array(case.upper))

    def step():
        state["x"], state["v"] = _numpy_wcsph_substep(state["x"], state["v"], *args)

    st = time_calls(step, repeat, warmup=1)
    return {"method": "numpy-wcsph", "baseline": True, "requested_n": n, "n": len(x), "dt": case.time_step,
            "ms_per_substep": st["median_ms"], "stats": st,
            "particle_substeps_per_s": len(x) / (st["median_ms"] * 1e-3)}


def substeps_per_call(substep_ms: float, dt: float) -> int:
    """How many substeps a timed call steps: as many as a 1/60 s frame holds, as the app steps
    them with one read of the device a frame, but no more than fit in CALL_MS of wall time, so
    that the slow sizes on a CPU keep to one substep a call."""
    frame = max(1, round(1.0 / (60.0 * dt)))
    return int(min(frame, max(1, CALL_MS // max(substep_ms, 1e-3))))


def bench_method(n: int, method: str, repeat: int, arch: str | None, warmup: int = 10) -> dict:
    """ms per substep, timed over calls of up to a frame's substeps each (substeps_per_call).
    One substep a call would add the frame's end (the host's read of the device, a fence and
    its latency) to every substep: on an H100 that is as long as a WCSPH substep of a million
    particles. The first substeps of the collapse from rest ran slower and far more spread on
    the 2-core CPU (PBF at 16k: 35 to 45 ms where later ones take 27), so ten are left untimed;
    they set the batch, and the density error is measured after them, at the same substep on
    every machine."""
    from waterrock.solver.solver import Solver

    case = DamBreak(n, method)
    s = Solver(case.scene(), arch=arch)
    warm = time_calls(lambda: s.step(case.time_step), warmup, warmup=0, sync=_sync)
    density_error = s.density_error()  # after the warm-up, whatever the batch and the repeats after it
    batch = substeps_per_call(warm["min_ms"], case.time_step)
    st = time_calls(lambda: s.step(batch * case.time_step), repeat, warmup=1, sync=_sync)
    st = {**st, **{k: st[k] / batch for k in ("median_ms", "iqr_ms", "min_ms", "max_ms")}}
    n_active = s.n_active()
    return {"method": method, "requested_n": n, "n": n_active, "dt": case.time_step, "substeps_per_call": batch,
            "ms_per_substep": st["median_ms"], "stats": st,
            "particle_substeps_per_s": n_active / (st["median_ms"] * 1e-3), "density_error": density_error}


def bench_default_scene(frames: int, arch: str | None, settle: int = 60) -> dict:
    """The default scene (waterfall over the boulder) at its own frame rate: the real-time factor
    is simulated seconds per wall second over ``frames`` frames after ``settle`` frames."""
    from waterrock.scene import load_scene
    from waterrock.solver.solver import Solver

    s = Solver(load_scene("default"), arch=arch)
    for _ in range(settle):  # let the waterfall form
        s.step()
    _sync()
    samples, t_sim = [], s.time
    t0 = time.perf_counter()
    for _ in range(frames):
        t = time.perf_counter()
        s.step()
        samples.append(1e3 * (time.perf_counter() - t))
    _sync()
    wall = time.perf_counter() - t0
    return {"frames": frames, "active": s.n_active(), "ms_per_frame": 1e3 * wall / frames,
            "stats": summarize(samples), "frame_rate": s.settings.frame_rate,
            "real_time_factor": (s.time - t_sim) / wall, "substeps_per_frame": s.stats["substeps"]}


def _pbf_frame_ms(n: int, arch: str | None, repeat: int, settings) -> tuple[int, dict]:
    """ms per 1/60 s PBF frame of a dam break of about ``n`` particles, with the default scene's
    solver settings (substeps, iterations, vorticity) and fixed substeps."""
    from waterrock.solver.solver import Solver

    substeps = settings.substeps
    case = DamBreak(n, "pbf", radius=0.01, time_step=1.0 / (60.0 * substeps))
    scene = case.scene(solver={"pbf_iterations": settings.pbf_iterations,
                               "vorticity_epsilon": settings.vorticity_epsilon})
    s = Solver(scene, arch=arch)
    st = time_calls(lambda: s.step(1.0 / 60.0), repeat, warmup=3, sync=_sync)
    return s.n_active(), st


def max_n_at_60fps(arch: str | None, repeat: int = 5, start: int = 4000, limit: int = 8_000_000,
                   log=print) -> dict:
    """The largest N whose PBF frame (solver only) fits 1/60 s: grow N by 4x until a frame takes
    longer, probe the bracket's geometric middle, then interpolate log(ms) linearly in log(N)
    between the two probes around the budget. Frame cost is nearly linear in N, so the power law
    between neighbouring probes is a close model; the probes themselves are in the result."""
    from waterrock.scene import load_scene

    settings = load_scene("default").solver
    probes: list[dict] = []

    def probe(n):
        got, st = _pbf_frame_ms(int(n), arch, repeat, settings)
        probes.append({"n": got, "ms_per_frame": st["median_ms"], "stats": st})
        log(f"  60 fps probe: PBF frame, N={got}: {st['median_ms']:.2f} ms")
        return st["median_ms"]

    n = start
    if probe(n) > FRAME_BUDGET_MS:
        while n > 500 and probe(n := n // 4) > FRAME_BUDGET_MS:
            pass
    else:
        while n < limit and probe(n := n * 4) <= FRAME_BUDGET_MS:
            pass
    under = [p for p in probes if p["ms_per_frame"] <= FRAME_BUDGET_MS]
    over = [p for p in probes if p["ms_per_frame"] > FRAME_BUDGET_MS]
    if under and over:
        lo, hi = max(under, key=lambda p: p["n"]), min(over, key=lambda p: p["n"])
        mid = int(math.sqrt(lo["n"] * hi["n"]))
        if probe(mid) <= FRAME_BUDGET_MS:
            lo = probes[-1]
        else:
            hi = probes[-1]
        est = budget_crossing((lo["n"], lo["ms_per_frame"]), (hi["n"], hi["ms_per_frame"]), FRAME_BUDGET_MS)
        return {"max_n": int(est), "bracket": [lo["n"], hi["n"]], "method": "interpolated", "probes": probes,
                "substeps": settings.substeps, "pbf_iterations": settings.pbf_iterations}
    how = "below the smallest probe" if not under else f"at least (the largest probe, {limit} cap)"
    best = max(under, key=lambda p: p["n"])["n"] if under else 0
    return {"max_n": best, "bracket": None, "method": how, "probes": probes,
            "substeps": settings.substeps, "pbf_iterations": settings.pbf_iterations}


def run_solver(sizes=(16000, 64000), methods=METHODS, repeat=5, arch=None, frames=120,
               fps_probe: bool = True, log=print) -> dict:
    from waterrock.backend import init_backend

    backend = init_backend(arch)
    rows = []
    for n in sizes:
        if n <= BASELINE_MAX_N:
            log(f"  numpy baseline N={n} ...")
            rows.append(bench_baseline(n, max(2, repeat // 2)))
        for m in methods:
            log(f"  {m} N={n} ...")
            rows.append(bench_method(n, m, repeat, arch))
    out = {"backend": backend, "repeat": repeat, "rows": rows}
    if frames > 0:
        log("  default scene ...")
        out["default_scene"] = bench_default_scene(frames, arch)
    if fps_probe:
        out["max_n_60fps"] = max_n_at_60fps(arch, repeat=repeat, log=log)
    return out


def table(result: dict) -> str:
    lines = [f"solver, Taichi backend {result['backend']}; median of {result['repeat']} timed calls after warm-up, "
             f"each of up to a frame's substeps ('per call'), per substep",
             f"{'method':<13}{'N':>9}{'dt':>9}{'per call':>9}{'ms/substep':>12}{'IQR':>8}{'p-substeps/s':>14}"
             f"{'density err':>13}{'vs numpy':>10}"]
    base = {r["requested_n"]: r for r in result["rows"] if r.get("baseline")}
    for r in result["rows"]:
        err = f"{100 * r['density_error']:.3f} %" if "density_error" in r else "-"
        b = base.get(r["requested_n"])
        ratio = f"{r['particle_substeps_per_s'] / b['particle_substeps_per_s']:.1f}x" if b and not r.get("baseline") \
            else "-"
        lines.append(f"{r['method']:<13}{r['n']:>9}{r['dt']:>9.0e}{r.get('substeps_per_call', 1):>9}"
                     f"{r['ms_per_substep']:>12.2f}"
                     f"{r['stats']['iqr_ms']:>8.2f}{r['particle_substeps_per_s']:>14.3g}{err:>13}{ratio:>10}")
    d = result.get("default_scene")
    if d:
        lines.append(f"default scene: {d['active']} particles, {d['ms_per_frame']:.1f} ms per frame "
                     f"(IQR {d['stats']['iqr_ms']:.1f}), {d['substeps_per_frame']} substeps, "
                     f"real-time factor {d['real_time_factor']:.2f}")
    m = result.get("max_n_60fps")
    if m:
        probes = ", ".join(f"{p['n']}: {p['ms_per_frame']:.1f} ms" for p in m["probes"])
        bracket = f", bracket {m['bracket']}" if m["bracket"] else ""
        lines.append(f"largest N at 60 fps (PBF frame, {m['substeps']} substeps x {m['pbf_iterations']} iterations, "
                     f"solver only): ~{m['max_n']} ({m['method']}{bracket}; probes {probes})")
    return "\n".join(lines)
