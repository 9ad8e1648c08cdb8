"""Solver benchmark: ms per substep, particle-substeps per second and density error, per method
and particle count, and the default scene's real-time factor; as a table and as JSON.

The baseline, measured in the same run on the same particles, is a vectorised numpy/scipy
WCSPH substep (a k-d tree neighbour search and the same cubic kernel and Tait equation): the
plain-Python way a developer would write the step, so the ratio says what Taichi buys here.

    python benchmarks/bench_solver.py --sizes 16000 64000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

METHODS = ("pbf", "dfsph", "wcsph")
TIME_STEP = {"pbf": 2e-3, "dfsph": 1e-3, "wcsph": 2e-4}


def _block_scene(n: int, method: str, radius: float = 0.01):
    """A dam break from rest: a cube of about n particles in the corner of a tank twice its width."""
    from waterrock.scene import parse_scene

    side = (n ** (1 / 3)) * 2 * radius
    return parse_scene({
        "domain": {"lower": [0, 0, 0], "upper": [2 * side, 1.5 * side, side]},
        "fluid": {"particle_radius": radius, "max_particles": int(n * 1.1) + 10,
                  "blocks": [{"lower": [0, 0, 0], "upper": [side, side, side]}]},
        "solver": {"method": method, "time_step": TIME_STEP[method], "density_tolerance": 0.0005},
    })


def _numpy_wcsph_substep(x, v, h, mass, rho0, B, gamma, dt, lower, upper):
    from scipy.spatial import cKDTree

    from waterrock.solver.kernels import cubic_gradW_np, cubic_W_np

    pairs = cKDTree(x).query_pairs(h, output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    r = x[i] - x[j]
    w = mass * cubic_W_np(np.linalg.norm(r, axis=1), h)
    rho = np.full(len(x), mass * cubic_W_np(0.0, h))
    np.add.at(rho, i, w)
    np.add.at(rho, j, w)
    p = np.maximum(B * ((rho / rho0) ** gamma - 1.0), 0.0)
    k = p / rho**2
    f = (mass * (k[i] + k[j]))[:, None] * cubic_gradW_np(r, h)
    a = np.zeros_like(x)
    np.add.at(a, i, -f)
    np.add.at(a, j, f)
    a[:, 1] -= 9.81
    v = v + dt * a
    x = np.clip(x + dt * v, lower, upper)
    return x, v


def bench_baseline(n: int, repeat: int) -> dict:
    scene = _block_scene(n, "wcsph")
    from waterrock.solver.solver import lattice_in_box

    b = scene.fluid.blocks[0]
    x = lattice_in_box(b.lower, b.upper, scene.fluid.spacing).astype(np.float64)
    v = np.zeros_like(x)
    args = (scene.fluid.support_radius, scene.fluid.particle_mass, scene.fluid.rest_density,
            scene.solver.stiffness, scene.solver.exponent, TIME_STEP["wcsph"],
            np.array(scene.domain.lower), np.array(scene.domain.upper))
    x, v = _numpy_wcsph_substep(x, v, *args)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        x, v = _numpy_wcsph_substep(x, v, *args)
        times.append(time.perf_counter() - t0)
    ms = 1e3 * float(np.median(times))
    return {"method": "numpy-wcsph (baseline)", "n": len(x), "ms_per_substep": ms,
            "particle_substeps_per_s": len(x) / (ms * 1e-3)}


def bench_method(n: int, method: str, repeat: int, arch: str | None) -> dict:
    import taichi as ti

    from waterrock.solver.solver import Solver

    s = Solver(_block_scene(n, method), arch=arch)
    dt = TIME_STEP[method]
    for _ in range(3):  # warm-up: compile, fill caches
        s.step(dt)
    ti.sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        s.step(dt)
        ti.sync()
        times.append(time.perf_counter() - t0)
    ms = 1e3 * float(np.median(times))
    n_active = s.n_active()
    return {"method": method, "n": n_active, "dt": dt, "ms_per_substep": ms,
            "spread_ms": 1e3 * float(np.percentile(times, 90) - np.percentile(times, 10)),
            "particle_substeps_per_s": n_active / (ms * 1e-3), "density_error": s.density_error()}


def bench_default_scene(frames: int, arch: str | None) -> dict:
    from waterrock.scene import load_scene
    from waterrock.solver.solver import Solver

    s = Solver(load_scene("default"), arch=arch)
    for _ in range(60):  # let the waterfall form
        s.step()
    t_sim, t0 = s.time, time.perf_counter()
    for _ in range(frames):
        s.step()
    wall = time.perf_counter() - t0
    return {"frames": frames, "active": s.n_active(), "ms_per_frame": 1e3 * wall / frames,
            "real_time_factor": (s.time - t_sim) / wall, "substeps_per_frame": s.stats["substeps"]}


def run_benchmark(sizes=(16000, 64000), methods=METHODS, repeat=5, arch=None, frames=120) -> dict:
    from waterrock.backend import init_backend

    backend = init_backend(arch)
    rows = []
    for n in sizes:
        if n <= 64000:
            rows.append(bench_baseline(n, max(2, repeat // 2)))
        for m in methods:
            rows.append(bench_method(n, m, repeat, arch))
    return {
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
                    "backend": backend},
        "rows": rows,
        "default_scene": bench_default_scene(frames, arch),
    }


def table(result: dict) -> str:
    lines = [f"backend: {result['machine']['backend']}",
             f"{'method':<24}{'N':>9}{'ms/substep':>12}{'p-substeps/s':>14}{'density err':>13}"]
    base = {r["n"]: r for r in result["rows"] if "baseline" in r["method"]}
    for r in result["rows"]:
        err = f"{100 * r['density_error']:.3f} %" if "density_error" in r else "-"
        lines.append(f"{r['method']:<24}{r['n']:>9}{r['ms_per_substep']:>12.2f}"
                     f"{r['particle_substeps_per_s']:>14.3g}{err:>13}")
    for r in result["rows"]:
        b = min(base.values(), key=lambda q: abs(q["n"] - r["n"]), default=None)
        if b and "baseline" not in r["method"] and abs(b["n"] - r["n"]) < 0.2 * r["n"]:
            ratio = r["particle_substeps_per_s"] / b["particle_substeps_per_s"]
            lines.append(f"  {r['method']} at N={r['n']}: {ratio:.1f}x the numpy baseline")
    d = result["default_scene"]
    lines.append(f"default scene: {d['active']} particles, {d['ms_per_frame']:.1f} ms per frame, "
                 f"{d['substeps_per_frame']} substeps, real-time factor {d['real_time_factor']:.2f}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[16000, 64000])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--frames", type=int, default=120, help="frames of the default scene to time")
    ap.add_argument("--arch", default=None)
    ap.add_argument("--json", default=None, help="write the results here")
    a = ap.parse_args(argv)
    result = run_benchmark(a.sizes, a.methods, a.repeat, a.arch, a.frames)
    print(table(result))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
