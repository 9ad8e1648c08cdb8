"""``waterrock bench sdf``: how long the rock's signed-distance volume takes to build, cold, and
how much memory, against a brute-force reference measured in the same run.

Each resolution is built in a child process of its own (``python -m waterrock.bench.sdf``), with
no cache, so that its peak resident memory is its own. The reference takes a random sample of
the same grid's nodes and computes them the direct way: the distance to every triangle
(trimesh's ``closest_point_naive``) and the exact winding number over every triangle; it gives
the accuracy (largest distance error, sign flips) and, scaled to the whole grid, the time the
direct way would take. Goal (issue 19): the shipped boulder at 256³ in at most 30 s and 2 GB on
two cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

GOAL_RESOLUTION, GOAL_SECONDS, GOAL_MB = 256, 30.0, 2048.0
REFERENCE_CHUNK = 64  # sample nodes per brute-force pass (64 x T x 3 corners in memory)


def _child(mesh_path: str, resolution: int, out: str) -> None:
    """In the child: build the volume cold, save it, print its time and peak memory as JSON."""
    import resource

    from waterrock.solver.mesh_sdf import compute_rock_sdf, load_rock_mesh

    mesh = load_rock_mesh(mesh_path)
    start = time.perf_counter()
    sdf = compute_rock_sdf(mesh, resolution=resolution, padding=0.1)
    seconds = time.perf_counter() - start
    np.savez(out, values=sdf.values, origin=sdf.origin, cell_size=np.float64(sdf.cell_size))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: kilobytes
    print(json.dumps({"seconds": seconds, "peak_mb": peak_kb / 1024.0, "shape": list(sdf.shape),
                      "faces": int(len(mesh.faces))}))


def reference(mesh, points: np.ndarray) -> tuple[np.ndarray, float]:
    """Signed distances at points the direct way, and the seconds it took."""
    import igl
    import trimesh

    start = time.perf_counter()
    distance = np.empty(len(points))
    for s in range(0, len(points), REFERENCE_CHUNK):
        chunk = slice(s, s + REFERENCE_CHUNK)
        _, distance[chunk], _ = trimesh.proximity.closest_point_naive(mesh, points[chunk])
    w = igl.winding_number(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64), points)
    return np.where(np.abs(w) > 0.5, -distance, distance), time.perf_counter() - start


def run_benchmark(resolutions: list[int], mesh_path: str | Path | None = None, sample: int = 1000,
                  log: Callable[[str], None] = print) -> dict:
    from waterrock.resources import resource_dir
    from waterrock.solver.mesh_sdf import load_rock_mesh

    mesh_path = Path(mesh_path or resource_dir("scenes") / "assets" / "boulder.obj")
    mesh = load_rock_mesh(mesh_path)
    rows = []
    rng = np.random.default_rng(0)
    for res in resolutions:
        log(f"sdf: {mesh_path.name} at {res}³")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "sdf.npz"
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            done = subprocess.run([sys.executable, "-m", "waterrock.bench.sdf", str(mesh_path), str(res), str(out)],
                                  capture_output=True, text=True, env=env, timeout=3600)
            if done.returncode != 0:
                rows.append({"resolution": res, "error": (done.stderr.strip().splitlines() or ["failed"])[-1]})
                continue
            child = json.loads(done.stdout.strip().splitlines()[-1])
            with np.load(out) as data:
                values, origin, cell = data["values"], data["origin"].astype(np.float64), float(data["cell_size"])
        idx = np.stack([rng.integers(0, n, sample) for n in values.shape], axis=1)
        points = origin + cell * idx
        want, ref_seconds = reference(mesh, points)
        got = values[idx[:, 0], idx[:, 1], idx[:, 2]].astype(np.float64)
        nodes = int(np.prod(values.shape))
        reference_s = ref_seconds / sample * nodes
        rows.append({"resolution": res, "shape": child["shape"], "nodes": nodes, "faces": child["faces"],
                     "seconds": child["seconds"], "peak_mb": child["peak_mb"],
                     "nodes_per_s": nodes / child["seconds"], "reference_nodes_per_s": sample / ref_seconds,
                     "reference_seconds_whole_grid": reference_s, "speedup": reference_s / child["seconds"],
                     "sample": sample, "max_error_m": float(np.abs(got - want).max()),
                     "sign_flips": int(np.sum((got < 0) != (want < 0)))})
    return {"mesh": str(mesh_path), "rows": rows, "goal": judge(rows)}


def judge(rows: list[dict]) -> dict:
    row = next((r for r in rows if r.get("resolution") == GOAL_RESOLUTION and "seconds" in r), None)
    goal = f"{GOAL_RESOLUTION}³ in <= {GOAL_SECONDS:g} s and <= {GOAL_MB / 1024:g} GB"
    if row is None:
        return {"goal": goal, "met": None, "detail": f"not measured: run with --sizes {GOAL_RESOLUTION}"}
    met = row["seconds"] <= GOAL_SECONDS and row["peak_mb"] <= GOAL_MB
    return {"goal": goal, "met": met, "detail": f"{row['seconds']:.1f} s, {row['peak_mb']:.0f} MB peak"}


def table(result: dict) -> str:
    lines = [f"rock SDF, cold (no cache), {Path(result['mesh']).name}; the reference computes a random sample of "
             f"nodes directly (every triangle, exact winding number), scaled to the grid",
             f"{'res':>5}{'nodes':>12}{'s':>8}{'peak MB':>9}{'nodes/s':>11}{'ref nodes/s':>13}{'ref s (grid)':>14}"
             f"{'x faster':>10}{'max err m':>11}{'flips':>7}"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"{r['resolution']:>5}  {r['error']}")
            continue
        lines.append(f"{r['resolution']:>5}{r['nodes']:>12,}{r['seconds']:>8.2f}{r['peak_mb']:>9.0f}"
                     f"{r['nodes_per_s']:>11.3g}{r['reference_nodes_per_s']:>13.3g}"
                     f"{r['reference_seconds_whole_grid']:>14.0f}{r['speedup']:>10.0f}{r['max_error_m']:>11.1e}"
                     f"{r['sign_flips']:>7}")
    g = result["goal"]
    state = {True: "met", False: "NOT met", None: "not judged"}[g["met"]]
    lines.append(f"goal: {g['goal']}: {state} ({g['detail']})")
    return "\n".join(lines)


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]), sys.argv[3])
