"""The solver's performance goals (issue 22, which raised issue 3's), judged from a solver
benchmark's results.

    WCSPH, DFSPH   at least 2.5x (WCSPH) and 2x (DFSPH) SPlisHSPlasH's particle-substeps per
                   second on the same dam break, same time step and tolerance, measured in the
                   same run (the peers)
    PBF, a CPU     a 60 fps frame with the default scene's solver settings keeps up with at
                   least 16,000 particles (the probe for the largest N at 60 fps)
    PBF, a GPU     the same with 5,000,000 particles (the issue names an H100)
    WCSPH, a GPU   at least 1.2e9 particle-substeps per second at 1M particles
    DFSPH, a GPU   at most 4 ms a substep at 1M particles

A goal that the run could not judge (no peers, no probe, a CPU for the GPU's goals) says what
would measure it, so that a table is never read as a goal met.
"""

from __future__ import annotations

PEER_FACTOR = {"wcsph": 2.5, "dfsph": 2.0}
CPU_60FPS_N = 16_000
GPU_60FPS_N = 5_000_000
GPU_WCSPH_N = 1_000_000
GPU_WCSPH_RATE = 1.2e9
GPU_DFSPH_N = 1_000_000
GPU_DFSPH_MS = 4.0
GPU_BACKENDS = ("cuda", "vulkan", "metal")


RATIO, COUNT, RATE = "{:.2f}x", "{:,.0f}", "{:.3g}"  # how each kind of goal's value is shown


def _goal(goal: str, value, target: float, detail: str, shown: str, at_most: bool = False) -> dict:
    met = None if value is None else bool(value <= target if at_most else value >= target)
    return {"goal": goal, "value": value, "target": target, "met": met, "detail": detail,
            "shown": "-" if value is None else shown.format(value)}


def judge(results: dict) -> list[dict]:
    """One entry per goal and measurement: what was asked, what was measured, met or not (None:
    not measured here)."""
    solver = results.get("solver")
    if not solver:
        return []
    backend = solver.get("backend")
    on_gpu = backend in GPU_BACKENDS
    out = []
    peers = results.get("peers")
    for method, factor in PEER_FACTOR.items():
        goal = f"{method.upper()} >= {factor:g}x SPlisHSPlasH"
        runs = [r for r in (peers or {}).get("runs", []) if r.get("peer") == "splishsplash" and r["method"] == method]
        for run in runs:
            ratio = run.get("speedup")
            n = run["waterrock"].get("particles", run["n"])
            detail = f"N={n}, dt {run['case']['time_step']:g} s" if ratio is not None else \
                f"N={n}: {run['result'].get('error') or run['waterrock'].get('error') or 'no ratio'}"
            out.append(_goal(goal, ratio, factor, detail, RATIO))
        if not runs:
            why = (peers or {}).get("skipped", {}).get("splishsplash") if peers else "peers not run (--no-peers)"
            out.append(_goal(goal, None, factor, why or "no SPlisHSPlasH run", RATIO))
    probe = solver.get("max_n_60fps")
    target = GPU_60FPS_N if on_gpu else CPU_60FPS_N
    goal = f"PBF at 60 fps on a {'GPU' if on_gpu else 'CPU'}: >= {target:,} particles"
    if probe:
        out.append(_goal(goal, probe["max_n"], target, f"{backend}, {probe['substeps']} substeps x "
                                                        f"{probe['pbf_iterations']} iterations, {probe['method']}",
                         COUNT))
    else:
        out.append(_goal(goal, None, target, "the 60 fps probe was not run (--no-fps-probe)", COUNT))
    goal = f"WCSPH >= {GPU_WCSPH_RATE:.2g} particle-substeps/s at 1M on a GPU"
    row = next((r for r in solver["rows"] if r["method"] == "wcsph" and r["requested_n"] == GPU_WCSPH_N), None)
    if on_gpu and row:
        out.append(_goal(goal, row["particle_substeps_per_s"], GPU_WCSPH_RATE, f"{backend}, N={row['n']}", RATE))
    else:
        why = "a GPU backend (--arch cuda)" if not on_gpu else f"WCSPH at N={GPU_WCSPH_N:,} (--sizes ... 1000000)"
        out.append(_goal(goal, None, GPU_WCSPH_RATE, f"needs {why}", RATE))
    goal = f"DFSPH <= {GPU_DFSPH_MS:g} ms a substep at 1M on a GPU"
    row = next((r for r in solver["rows"] if r["method"] == "dfsph" and r["requested_n"] == GPU_DFSPH_N), None)
    if on_gpu and row:
        out.append(_goal(goal, row["ms_per_substep"], GPU_DFSPH_MS, f"{backend}, N={row['n']}", "{:.2f} ms",
                         at_most=True))
    else:
        why = "a GPU backend (--arch cuda)" if not on_gpu else f"DFSPH at N={GPU_DFSPH_N:,} (--sizes ... 1000000)"
        out.append(_goal(goal, None, GPU_DFSPH_MS, f"needs {why}", "{:.2f} ms", at_most=True))
    if not on_gpu:
        out.append(_goal(f"PBF at 60 fps on a GPU: >= {GPU_60FPS_N:,} particles", None, GPU_60FPS_N,
                         "needs a GPU backend (--arch cuda)", COUNT))
    return out


def table(goals: list[dict]) -> str:
    lines = ["the solver's goals (issue 22)"]
    for g in goals:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[g["met"]]
        lines.append(f"  {g['goal']:<52}{g['shown']:>12}  {verdict:<14}{g['detail']}")
    return "\n".join(lines)
