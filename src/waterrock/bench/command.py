"""``waterrock bench [solver|render|tracker|frame|sdf|procam|portals|fanout|governor|all]``: run, print the
tables, write JSON and the plot, compare with a baseline. The CLI's parser lives in app/cli.py; this is what
it calls."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

from waterrock import files
from waterrock.bench import compare as comparing
from waterrock.bench import goals
from waterrock.bench.figures import figures
from waterrock.bench.machine import machine_info
from waterrock.progress import progress

WHICH = ("solver", "render", "tracker", "frame", "sdf", "procam", "portals", "fanout", "governor")
SCHEMA = 1


class BenchUsageError(ValueError):
    """Bad options: one line, exit status 2."""


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise BenchUsageError(f"a resolution is WxH (like 1920x1080), not {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise BenchUsageError(f"resolution {text} outside 16x16 .. 8192x8192")
    return w, h


def _counts(values: list[str] | None, name: str) -> list[int] | None:
    if values is None:
        return None
    try:
        out = [int(float(v)) for v in values]
    except ValueError:
        raise BenchUsageError(f"{name} takes particle or segment counts, not {' '.join(values)}") from None
    if any(v < 8 for v in out):
        raise BenchUsageError(f"{name}: every count must be at least 8, got {out}")
    return out


def measure(args) -> dict:
    """Run what ``args.which`` names; the results as one JSON-ready dict."""
    which = WHICH if args.which == "all" else (args.which,)
    if args.repeat < 1:
        raise BenchUsageError(f"--repeat must be at least 1, got {args.repeat}")
    if args.share is not None and not 0.001 <= args.share <= 1.0:  # [render.trails] share's range
        raise BenchUsageError(f"--share is a share of the particles in [0.001, 1], not {args.share:g}")
    if {"frame", "governor"} & set(which):  # the scene they run, read before any benchmark starts
        from waterrock.scene import SceneError, load_scene

        try:
            load_scene(args.scene)
        except (FileNotFoundError, SceneError) as err:
            raise BenchUsageError(f"--scene {args.scene}: {err}") from None
    gpu = args.arch in ("cuda", "vulkan", "metal")
    results: dict = {"schema": SCHEMA, "command": "waterrock bench " + " ".join(sys.argv[2:]) if len(sys.argv) > 2
                     else "waterrock bench", "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "which": list(which)}
    arch = None
    if {"solver", "frame", "governor"} & set(which):
        from waterrock.backend import init_backend

        arch = init_backend(args.arch)
    results["machine"] = machine_info(arch, with_gl=bool({"render", "frame", "procam", "governor"} & set(which)))
    # --sizes: particle counts for the solver (alone or in `all`), segment counts for `render`, WxH for `tracker`
    sizes = _counts(args.sizes, "--sizes") if args.which in ("solver", "render", "all") else None
    with progress("bench", total=len(which), unit=" benchmarks") as advance:
        if "solver" in which:
            from waterrock.bench import solver

            _log("== solver")
            default = [16000, 64000, 256000, 1000000] if gpu else [16000, 64000, 256000]  # issue 3's sizes
            results["solver"] = solver.run_solver(sizes or default, args.methods, args.repeat, arch,
                                                  frames=args.frames, fps_probe=not args.no_fps_probe, log=_log)
            if not args.no_peers:
                from waterrock.bench import peers

                _log("== peers")
                peer_sizes = _counts(args.peer_sizes, "--peer-sizes") or [16000, 32000]
                results["peers"] = peers.compare_peers(peer_sizes, args.radius, args.peer_seconds, arch, log=_log)
            results["goals"] = goals.judge(results)
        advance("solver" in which)
        if "render" in which:
            from waterrock.bench import render

            _log("== render")
            resolutions = [_resolution(r) for r in (args.resolution or ["1280x720", "1920x1080"])]
            default = [10_000, 100_000, 1_000_000] if gpu else [10_000, 100_000]
            segs = (sizes if args.which == "render" else None) or default
            results["render"] = [render.run_benchmark(segs, res, args.repeat) for res in resolutions]
        advance("render" in which)
        if "tracker" in which:
            from waterrock.bench import tracker

            _log("== tracker")
            frame_sizes = [_resolution(s) for s in (args.sizes if args.which == "tracker" and args.sizes else
                                                     args.resolution or ["640x480", "1280x720"])]
            results["tracker"] = tracker.run_benchmark(frame_sizes, max(10, 12 * args.repeat))
        advance("tracker" in which)
        if "frame" in which:
            from waterrock.bench import frame

            _log("== frame")
            res = _resolution(args.resolution[0]) if args.resolution else None
            counts = _counts(args.sizes, "--sizes") if args.which == "frame" else None
            if counts:  # the scene at its own size, then at each count (bench/frame.py: scaled_scene)
                results["frame"] = frame.run_frame_sizes(args.scene, counts, frames=max(30, 12 * args.repeat),
                                                         arch=arch, resolution=res, share=args.share, log=_log)
            else:
                results["frame"] = frame.run_frame(args.scene, frames=max(30, 12 * args.repeat), arch=arch,
                                                   resolution=res, share=args.share)
        advance("frame" in which)
        if "sdf" in which:
            from waterrock.bench import sdf

            _log("== sdf")
            counts = _counts(args.sizes, "--sizes") if args.which == "sdf" else None
            results["sdf"] = sdf.run_benchmark(counts or [64, 128, 256], log=_log)
        advance("sdf" in which)
        if "procam" in which:
            from waterrock.bench import procam

            _log("== procam")
            pair = [_resolution(s) for s in args.sizes] if args.which == "procam" and args.sizes else None
            if pair is not None and len(pair) != 2:
                raise BenchUsageError(f"procam: --sizes takes the camera's and the projector's WxH, not {args.sizes}")
            results["procam"] = procam.run_benchmark(*(pair or (procam.CAMERA_SIZE, procam.PROJECTOR_SIZE)),
                                                     repeat=args.repeat, log=_log)
        advance("procam" in which)
        if "portals" in which:
            from waterrock.bench import portals

            _log("== portals")
            counts = _counts(args.sizes, "--sizes") if args.which == "portals" else None
            results["portals"] = portals.run_benchmark(counts or portals.SIZES, log=_log)
        advance("portals" in which)
        if "fanout" in which:
            from waterrock.bench import fanout

            _log("== fanout")
            counts = _counts(args.sizes, "--sizes") if args.which == "fanout" else None
            results["fanout"] = fanout.run_benchmark(counts or fanout.SIZES, log=_log)
        advance("fanout" in which)
        if "governor" in which:
            from waterrock.bench import governor

            _log("== governor")
            res = _resolution(args.resolution[0]) if args.resolution else None
            results["governor"] = governor.run_benchmark(args.scene, args.governor_seconds,
                                                         args.governor_runs, args.arch, res, log=_log)
        advance("governor" in which)
    results["figures"] = figures(results)
    if results.get("procam"):  # its figures live with it, in bench/procam.py
        from waterrock.bench.procam import figures as procam_figures

        results["figures"].update(procam_figures(results["procam"]))
    return results


def tables(results: dict) -> str:
    parts = []
    m = results.get("machine") or {}
    v = m.get("versions", {})
    gl = (m.get("gl") or {}).get("renderer")
    arch, vk = m.get("taichi_arch"), ", ".join(m.get("vulkan_devices") or [])
    parts.append(f"machine: {m.get('cpu')}, {m.get('usable_cores')} of {m.get('cores')} cores, "
                 f"GPU {', '.join(m.get('gpus') or []) or 'none'}, Taichi {arch}"
                 f"{f' (Vulkan devices: {vk})' if arch == 'vulkan' and vk else ''}, GL {gl}; "
                 + ", ".join(f"{k} {val}" for k, val in v.items() if val))
    if results.get("solver"):
        from waterrock.bench.solver import table

        parts.append(table(results["solver"]))
    if results.get("peers") is not None:
        parts.append(peers_table(results["peers"]))
    if results.get("solver"):  # judged again: an earlier run's JSON (--results) may predate the goals
        parts.append(goals.table(goals.judge(results)))
    for rep in results.get("render") or []:
        from waterrock.bench.render import table

        parts.append(table(rep))
    if results.get("tracker"):
        from waterrock.bench.tracker import table

        parts.append(table(results["tracker"]))
    if results.get("frame"):
        from waterrock.bench.frame import table

        parts.append(table(results["frame"]))
    if results.get("sdf"):
        from waterrock.bench.sdf import table

        parts.append(table(results["sdf"]))
    if results.get("procam"):
        from waterrock.bench.procam import table

        parts.append(table(results["procam"]))
    if results.get("portals"):
        from waterrock.bench.portals import table

        parts.append(table(results["portals"]))
    if results.get("fanout"):
        from waterrock.bench.fanout import table

        parts.append(table(results["fanout"]))
    if results.get("governor"):
        from waterrock.bench.governor import table

        parts.append(table(results["governor"]))
    return "\n\n".join(parts)


def _err(res: dict) -> str:
    e = res.get("common", {}).get("density_error")
    return "-" if e is None else f"{100 * e:.3f} %"


def _iters(res: dict) -> str:
    it = res.get("iterations")
    return "-" if not it else f"{it['density_mean']:.1f}/{it['divergence_mean']:.1f}"


def peers_table(p: dict) -> str:
    lines = [f"peers: the dam break (r = {p['radius']} m, {p['seconds']} s simulated from rest, same dt and "
             f"tolerance per pair), wall time after warm-up; density error of the final particles, one estimate "
             f"for all (interior particles, fluid-only cubic-spline sum); DFSPH iterations are mean "
             f"density/divergence per step",
             f"{'solver':<26}{'method':>7}{'N':>8}{'dt':>8}{'steps':>7}{'wall s':>9}{'ms/step':>9}"
             f"{'p-steps/s':>11}{'density err':>12}{'iters':>10}{'waterrock x':>12}"]
    for reason in p["skipped"].values():
        lines.append(f"  {reason}")
    for run in p["runs"]:
        for who, res in (("waterrock", run["waterrock"]), (run["peer_label"], run["result"])):
            if "error" in res:
                lines.append(f"{who:<26}{run['method']:>7}  {res['error']}")
                continue
            ratio = f"{run['speedup']:.2f}" if who != "waterrock" and "speedup" in run else ""
            label = who + (" (1 thread)" if who == "Warp SPH" and "single" in res.get("note", "") else "")
            lines.append(f"{label:<26}{run['method']:>7}{res['particles']:>8}{run['case']['time_step']:>8.0e}"
                         f"{res['timed_steps']:>7}{res['wall_s']:>9.2f}{res['ms_per_step']:>9.2f}"
                         f"{res['particle_substeps_per_s']:>11.3g}{_err(res):>12}{_iters(res):>10}{ratio:>12}")
    return "\n".join(lines)


def main(args) -> int:
    """The bench command: 0, 1 when --compare found a regression, 2 on bad options."""
    try:
        if args.plot and importlib.util.find_spec("matplotlib") is None:
            raise BenchUsageError("--plot needs matplotlib: pip install 'waterrock[bench]'")
        if args.results:
            try:
                results = json.loads(Path(args.results).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as err:
                raise BenchUsageError(f"--results {args.results}: {err}") from None
        else:
            results = measure(args)
        baseline = comparing.load_figures(args.compare) if args.compare else None
    except (BenchUsageError, comparing.CompareError) as err:
        print(f"waterrock: error: {err}", file=sys.stderr)
        return 2
    print(tables(results))
    rc = 0
    if baseline is not None:
        report = comparing.compare(results.get("figures") or figures(results), baseline)
        results["comparison"] = {"baseline": str(args.compare), **report}
        print()
        print(comparing.table(report))
        if report["compared"] == 0:
            print(f"waterrock: error: nothing in common with {args.compare} to compare (other sizes or parts?)",
                  file=sys.stderr)
            rc = 2
        elif report["regressed"]:
            print(f"REGRESSION: {', '.join(report['regressed'])}", file=sys.stderr)
            rc = 1
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        files.write_json(args.json, results, indent=1)
        print(f"results: {args.json}")
    if args.plot:
        from waterrock.bench.plot import plot

        print(f"plot: {plot(results, args.plot)}")
    return rc
