"""Peer solvers on the same dam break, timed back to back with waterrock's matching methods.

Each peer is a script in the repository's ``benchmarks/peers/`` (installed as the data package
``waterrock.bench_peers``) run in its own process, so that a peer crashing (pysplishsplash 2.19
segfaults on import where the system's libGLX loads before its bundled libGLdispatch) cannot
stop the benchmark, and so that its threads and GPU context never share a process with Taichi.
A peer that is not installed is skipped with the line saying how to install it.

For every pair the same case runs first in waterrock, then in the peer; both are timed over
the whole simulated span after a warm-up (compilation, first step), and both final particle
sets go through ``density.common_density_error``.
"""

from __future__ import annotations

import ctypes.util
import importlib.resources
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from waterrock.bench.cases import DamBreak
from waterrock.bench.density import common_density_error

INSTALL_HINT = "pip install 'waterrock[peers]'"


@dataclass(frozen=True)
class Peer:
    key: str
    label: str
    module: str  # what must be importable
    distribution: str  # what pip installs
    script: str
    methods: tuple[str, ...]
    preload_gldispatch: bool = False
    note: str = ""


PEERS = (
    Peer("splishsplash", "SPlisHSPlasH", "pysplishsplash", "pysplishsplash==2.19.0", "splishsplash.py",
         ("wcsph", "dfsph"), preload_gldispatch=True, note="OpenMP on all cores"),
    Peer("warp", "Warp SPH", "warp", "warp-lang", "warp_sph.py", ("wcsph",),
         note="on the CPU, Warp runs kernels on one thread"),
)


def scripts_dir() -> Path:
    from waterrock.resources import REPO_ROOT

    in_checkout = REPO_ROOT / "benchmarks" / "peers"
    if in_checkout.is_dir():
        return in_checkout
    return Path(str(importlib.resources.files("waterrock.bench_peers")))


def missing(peer: Peer) -> str | None:
    """Why ``peer`` cannot run here, or None. Looks the module up without importing it."""
    if importlib.util.find_spec(peer.module) is None:
        return f"{peer.label} skipped: the Python module {peer.module!r} is not installed ({INSTALL_HINT}, " \
               f"or pip install '{peer.distribution}')"
    if not (scripts_dir() / peer.script).is_file():
        return f"{peer.label} skipped: its script {peer.script} is not in {scripts_dir()}"
    return None


def _gldispatch() -> str | None:
    """The system's libGLdispatch, preloaded so pysplishsplash's bundled copy does not clash with libGLX."""
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"):
        p = Path(d) / "libGLdispatch.so.0"
        if p.is_file():
            return str(p)
    return ctypes.util.find_library("GLdispatch")


def run_peer(peer: Peer, case: DamBreak, device: str = "cpu", timeout: float = 1800.0) -> dict:
    """Run one peer on ``case`` in a subprocess; its result with the common density error, or
    {'error': ...} when it failed (the tail of its output says why)."""
    env = dict(os.environ)
    if peer.preload_gldispatch and (lib := _gldispatch()):
        env["LD_PRELOAD"] = ":".join(filter(None, [lib, env.get("LD_PRELOAD")]))
    with tempfile.TemporaryDirectory(prefix=f"waterrock-peer-{peer.key}-") as tmp:
        tmp = Path(tmp)
        (tmp / "case.json").write_text(json.dumps(case.to_json()), encoding="utf-8")
        cmd = [sys.executable, str(scripts_dir() / peer.script), str(tmp / "case.json"), str(tmp / "out"),
               "--device", device]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"{peer.label} did not finish within {timeout:.0f} s"}
        result_file = tmp / "out" / "result.json"
        if proc.returncode != 0 or not result_file.is_file():
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-6:]
            how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
            return {"error": f"{peer.label} failed ({how}): " + " | ".join(tail)}
        result = json.loads(result_file.read_text(encoding="utf-8"))
        x = np.load(tmp / "out" / "positions.npy")
    result["process_s"] = time.perf_counter() - t0
    return _with_rates(result, case, x)


def _with_rates(result: dict, case: DamBreak, x: np.ndarray) -> dict:
    steps = result["timed_steps"]
    result["ms_per_step"] = 1e3 * result["wall_s"] / steps
    result["particle_substeps_per_s"] = result["particles"] * steps / result["wall_s"]
    result["common"] = common_density_error(x, case.radius, case.rest_density, case.lower, case.upper)
    return result


def run_waterrock(case: DamBreak, arch: str | None) -> dict:
    """waterrock on ``case`` in this process: warm-up substep (compiles), reset, then the whole span
    in frames of about 10 ms of simulated time (the host reads the device once per frame)."""
    import taichi as ti

    from waterrock.solver.solver import Solver

    s = Solver(case.scene(), arch=arch)
    s.step(case.time_step)
    ti.sync()
    s.reset()
    per_frame = max(1, round(0.01 / case.time_step))
    frames, rest = divmod(case.steps, per_frame)
    iters = []
    t0 = time.perf_counter()
    for k in range(frames + (1 if rest else 0)):
        stats = s.step(case.time_step * (per_frame if k < frames else rest))
        if "density_iterations" in stats:
            iters.append((stats["density_iterations"], stats["divergence_iterations"]))
    ti.sync()
    wall = time.perf_counter() - t0
    snap = s.snapshot()
    result = {"peer": "waterrock", "method": case.method, "particles": len(snap), "steps": case.steps,
              "timed_steps": case.steps, "wall_s": wall, "device": s.arch,
              "density_error_own": s.density_error()}
    if iters:
        it = np.asarray(iters)
        result["iterations"] = {"density_mean": float(it[:, 0].mean()), "density_max": int(it[:, 0].max()),
                                "divergence_mean": float(it[:, 1].mean()), "divergence_max": int(it[:, 1].max()),
                                "sampled": "the last substep of each frame"}
    return _with_rates(result, case, snap.positions)


def compare_peers(sizes, radius: float, seconds: float, arch: str | None, peers=PEERS, log=print) -> dict:
    """For each N and each peer method: waterrock then the peer, and waterrock's ratio to it."""
    device = "cuda" if arch == "cuda" else "cpu"
    skipped = {}
    for p in peers:
        reason = missing(p)
        if reason:
            skipped[p.key] = reason
            log(reason)
    runs = []
    for n in sizes:
        ours: dict[str, dict] = {}
        for p in peers:
            if p.key in skipped:
                continue
            for method in p.methods:
                case = DamBreak(int(n), method, radius=radius, seconds=seconds)
                if method not in ours:
                    log(f"  waterrock {method} N={len(case.positions())} for {case.steps} steps ...")
                    ours[method] = run_waterrock(case, arch)
                log(f"  {p.label} {method} N={len(case.positions())} for {case.steps} steps ...")
                theirs = run_peer(p, case, device)
                row = {"n": int(n), "method": method, "peer": p.key, "peer_label": p.label, "note": p.note,
                       "case": case.to_json(), "waterrock": ours[method], "result": theirs}
                if "error" in theirs:
                    log(f"  {theirs['error']}")
                else:
                    row["speedup"] = ours[method]["particle_substeps_per_s"] / theirs["particle_substeps_per_s"]
                runs.append(row)
    return {"runs": runs, "skipped": skipped, "device": device, "radius": radius, "seconds": seconds}
