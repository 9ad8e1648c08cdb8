"""The figures the regression guard compares: ratios of two things measured in the same run.

Absolute times depend on the machine and on whoever else uses it; a ratio of two timings taken
back to back in one run (waterrock against the numpy step, against a peer; the thick lines
against plain GL_LINES; the tracker against bare connected components) mostly does not. Density
errors are not timings and are compared as they are, with an absolute floor under which a change
is noise.
"""

from __future__ import annotations


def _fig(value: float, better: str, what: str, floor: float = 0.0) -> dict:
    return {"value": float(value), "better": better, "what": what, "floor": floor}


def figures(results: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}
    solver = results.get("solver")
    if solver:
        base = {r["requested_n"]: r for r in solver["rows"] if r.get("baseline")}
        for r in solver["rows"]:
            if r.get("baseline"):
                continue
            key = f"solver.{r['method']}.n{r['requested_n']}"
            b = base.get(r["requested_n"])
            if b:
                out[f"{key}.vs_numpy"] = _fig(r["particle_substeps_per_s"] / b["particle_substeps_per_s"], "higher",
                                              f"{r['method']} throughput / numpy WCSPH step's, N={r['n']}")
            if r.get("density_error") is not None:
                out[f"{key}.density_error"] = _fig(r["density_error"], "lower",
                                                   f"{r['method']} mean density error, N={r['n']}", floor=1e-4)
    for run in (results.get("peers") or {}).get("runs", []):
        if "speedup" in run:
            out[f"peers.{run['peer']}.{run['method']}.n{run['n']}.speedup"] = _fig(
                run["speedup"], "higher", f"waterrock {run['method']} / {run['peer_label']} throughput, N={run['n']}")
    for rep in results.get("render") or []:
        w, h = rep["resolution"]
        for r in rep["results"]:
            out[f"render.{w}x{h}.s{r['segments']}.gl_lines_over_lines"] = _fig(
                r["gl_lines_ms"] / r["lines_ms"], "higher", f"GL_LINES frame / thick-lines frame, {r['segments']} "
                f"segments at {w}x{h}")
    tracker = results.get("tracker")
    if tracker:
        for size, kinds in tracker["sizes"].items():
            d, c = kinds["depth"], kinds["color"]
            out[f"tracker.{size}.depth.cc_over_pipeline"] = _fig(
                d["baseline_connected_components"]["median_ms"] / d["pipeline"]["median_ms"], "higher",
                f"connected components alone / depth pipeline, {size}")
            out[f"tracker.{size}.color.mog2_cc_over_pipeline"] = _fig(
                1.0 / c["ratio_to_baseline"], "higher",
                f"a plain MOG2 + connected-components loop / the colour pipeline, {size}")
        for mode, r in (tracker.get("beside_frame_loop") or {}).items():
            out[f"tracker.beside_frame_loop.{mode}.share"] = _fig(
                r["share_of_source"], "higher", f"share of a 30 fps camera's frames the tracker {mode} delivers "
                "beside the default scene's frame loop")
    for r in (results.get("sdf") or {}).get("rows", []):
        if "speedup" in r:
            out[f"sdf.r{r['resolution']}.speedup"] = _fig(
                r["speedup"], "higher", f"rock SDF at {r['resolution']}³: the direct way's time / the build's")
    frame = results.get("frame")
    if frame and frame["stages"]["solve"]["median_ms"] > 0:
        st = frame["stages"]
        out["frame.total_over_solve"] = _fig(st["total"]["median_ms"] / st["solve"]["median_ms"], "lower",
                                             "whole frame / its solve stage (the loop's overhead)")
    gov = results.get("governor")
    if gov:
        out[f"governor.{gov['scene']}.speedup"] = _fig(
            gov["speedup"], "higher", f"displayed fps with the frame-rate governor / without it, {gov['scene']} scene")
    return out
