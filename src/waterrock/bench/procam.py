"""``waterrock bench procam``: what calibrating a projector against the rock costs, and what
painting the picture onto the rock costs against the flat corner pin.

    waterrock bench procam [--sizes 1280x720 1920x1080] [--repeat 5] [--json out.json]

On the simulated rig (``procam/rig.py``: the default scene's boulder, a distorted camera beside
one projector, gamma, ambient light and sensor noise), three things:

1. The Gray-code decode (``graycode.decode``) of one projector's 44 patterns, white and black, as
   the camera captured them; the capture is the simulation and is timed apart. The reference,
   in the same run on the same frames, is OpenCV contrib's per-pixel ``getProjPixel`` on a random
   sample of the lit pixels, its time a pixel scaled to the frame; on that sample the two must
   agree on every pixel. Goal (the issue's): at most 2 s a projector for a 1280x720 camera and a
   1920x1080 projector on two cores.
2. The solve, each step once: the camera's pose by ICP from a rough one (6 cm and 3 degrees off),
   the block correspondences, the rock points under them, the projector; with the reprojection
   error and the camera's and projector's pose error against the rig's truth.
3. ``OnRockPass.draw`` (the picture painted onto the rock from the calibrated projector) against
   ``WarpPass.draw`` (the flat corner pin) at the projector's size on the same context, each
   fenced by ``ctx.finish()``, median of the repeats after warm-up.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import moderngl
import numpy as np

from waterrock.bench.stats import report, time_calls
from waterrock.procam import graycode, solve
from waterrock.procam.model import Pinhole
from waterrock.procam.rig import rough_pose

CAMERA_SIZE, PROJECTOR_SIZE = (1280, 720), (1920, 1080)
GOAL_DECODE_S = 2.0  # a 1920x1080 projector's Gray code from a 1280x720 camera, two cores
REFERENCE_SAMPLE = 2000  # lit pixels decoded by OpenCV's getProjPixel (about 10-15 us each)

# The rig of tests/procam/test_rig_calibration.py at other sizes: the camera keeps that one's
# vertical field of view (34.5 degrees), so a wider frame sees more on either side.
CAMERA_EYE, PROJECTOR_EYE, TARGET = (-0.1, 1.5, 1.2), (0.6, 1.9, 0.9), (0.0, 0.25, 0.0)
CAMERA_VFOV_DEG, PROJECTOR_HFOV_DEG = 34.5, 30.0


def rig_devices(camera_size, projector_size) -> tuple[Pinhole, Pinhole]:
    """The simulated rig's camera and projector at these sizes (w, h)."""
    aspect = camera_size[0] / camera_size[1]
    hfov = 2.0 * np.degrees(np.arctan(aspect * np.tan(np.radians(CAMERA_VFOV_DEG) / 2.0)))
    camera = Pinhole.looking_at(tuple(camera_size), hfov, CAMERA_EYE, TARGET, dist=[-0.12, 0.05, 0.001, -0.001, 0])
    projector = Pinhole.looking_at(tuple(projector_size), PROJECTOR_HFOV_DEG, PROJECTOR_EYE, TARGET, shift=(0.0, 0.1),
                                   dist=[-0.08, 0, 0, 0, 0])
    return camera, projector


def pose_error(found: Pinhole, truth: Pinhole) -> tuple[float, float]:
    """How far ``found`` is from ``truth``: its centre (cm) and its rotation (degrees)."""
    angle = np.degrees(np.linalg.norm(cv2.Rodrigues(found.R @ truth.R.T)[0]))
    return 100.0 * float(np.linalg.norm(found.centre - truth.centre)), float(angle)


def _seconds(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def capture(rig, size) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Output 0's Gray-code patterns, then white and black, as the camera grabs them."""
    frames = []
    for image in (*graycode.patterns(size), *graycode.white_black(size)):
        rig.show(0, image)
        frames.append(rig.grab())
    rig.show(0, None)
    return frames[:-2], frames[-2], frames[-1]


def bench_decode(captures, white, black, size, repeat: int, sample: int, rng) -> tuple[dict, graycode.Decoded]:
    decoded = graycode.decode(captures, white, black, size)  # the warm-up, and the answer
    st = time_calls(lambda: graycode.decode(captures, white, black, size), repeat, warmup=0)
    seconds = st["median_ms"] / 1000.0
    h, w = decoded.valid.shape
    lit = np.argwhere(~decoded.shadow)[:, ::-1]  # (x, y)
    pick = lit[rng.choice(len(lit), min(sample, len(lit)), replace=False)]
    theirs = graycode.reference_decode(captures, white, black, size, pick)
    ref_s = time_calls(lambda: graycode.reference_decode(captures, white, black, size, pick), repeat,
                       warmup=0)["median_ms"] / 1000.0
    ours = np.column_stack([decoded.column[pick[:, 1], pick[:, 0]], decoded.row[pick[:, 1], pick[:, 0]]])
    agree = np.all(ours == theirs, axis=1)
    us = 1e6 * ref_s / max(len(pick), 1)
    frame_s, lit_s = us * w * h / 1e6, us * len(lit) / 1e6
    return {
        "frames": len(captures) + 2, "stats": st, "seconds": seconds,
        "share_valid": decoded.share_valid, "share_lit": float(len(lit) / (w * h)),
        "reference": {"sample": len(pick), "us_per_pixel": us, "seconds_frame": frame_s, "seconds_lit": lit_s,
                      "share_decoded": float(np.mean(theirs[:, 0] >= 0)) if len(pick) else 0.0},
        "speedup": frame_s / seconds, "speedup_lit": lit_s / seconds,
        "agreement": float(agree.mean()) if len(pick) else 0.0, "disagreements": int((~agree).sum()),
        "goal_s": GOAL_DECODE_S,
    }, decoded


def bench_solve(rig, decoded: graycode.Decoded, mesh, depth: np.ndarray, size) -> tuple[dict, Pinhole]:
    pose, pose_s = _seconds(lambda: solve.solve_camera_pose(rough_pose(rig.camera), depth, mesh))
    pairs, pairs_s = _seconds(lambda: solve.block_correspondences(decoded))
    points, points_s = _seconds(lambda: solve.rock_points(pose.camera, pairs.camera, mesh))
    fit, fit_s = _seconds(lambda: solve.solve_projector(points, pairs.projector, size, what="output 0"))
    cam_cm, cam_deg = pose_error(pose.camera, rig.camera)
    proj_cm, proj_deg = pose_error(fit.projector, rig.projectors[0])
    steps = {"camera_pose_s": pose_s, "correspondences_s": pairs_s, "rock_points_s": points_s,
             "projector_s": fit_s}
    return {
        **steps, "total_s": sum(steps.values()),
        "depth_points": pose.inliers, "pairs": len(pairs.camera),
        "rock_points": int(np.all(np.isfinite(points), axis=1).sum()),
        "pairs_kept": int(np.isfinite(fit.errors).sum()),
        "reprojection_rms_px": fit.rms_px, "camera_icp_rms_mm": 1000.0 * pose.rms_m,
        "camera_error_cm": cam_cm, "camera_error_deg": cam_deg,
        "projector_error_cm": proj_cm, "projector_error_deg": proj_deg,
    }, fit.projector


def bench_render(ctx: moderngl.Context, mesh, device: Pinhole, size, repeat: int) -> dict:
    """Both passes at ``size`` onto one framebuffer from the same picture (the composed picture
    at the output's size, a gradient: its content costs nothing either way)."""
    from waterrock.render.onrock import OnRockPass
    from waterrock.render.projection import flattening
    from waterrock.render.target import OffscreenTarget
    from waterrock.render.warp import WarpPass
    from waterrock.resources import REPO_ROOT
    from waterrock.scene import ProjectorOutput, load_scene

    w, h = size
    flatten = flattening(load_scene(REPO_ROOT / "scenes" / "default.toml").render.projection, size)
    yy, xx = np.mgrid[0:h, 0:w]
    picture = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx ^ yy) & 255,
                        np.full_like(xx, 255)], axis=-1).astype(np.uint8)
    tex = ctx.texture((w, h), 4, np.ascontiguousarray(picture).tobytes())
    onrock, warp = OnRockPass(ctx, mesh), WarpPass(ctx)
    output = ProjectorOutput(corners=((0.05, 0.02), (0.97, 0.0), (1.0, 0.95), (0.0, 1.0)))  # a typical pin
    try:
        with OffscreenTarget(size, ctx) as target:
            fbo = target.framebuffer
            timed = {}
            for name, fn in (("onrock", lambda: onrock.draw(fbo, size, tex, device, flatten)),
                             ("warp", lambda: warp.draw(fbo, size, tex, output))):
                timed[name] = time_calls(fn, repeat, warmup=2, sync=ctx.finish)
            onrock.draw(fbo, size, tex, device, flatten)
            lit = float((target.read().max(axis=-1) > 0).mean())
    finally:
        for r in (onrock, warp, tex):
            r.release()
    return {"size": list(size), "repeat": repeat, "onrock": timed["onrock"], "warp": timed["warp"],
            "ratio": timed["onrock"]["median_ms"] / timed["warp"]["median_ms"], "onrock_share_lit": lit}


def run_benchmark(camera_size=CAMERA_SIZE, projector_size=PROJECTOR_SIZE, repeat: int = 5,
                  render_repeat: int | None = None, sample: int = REFERENCE_SAMPLE,
                  ctx: moderngl.Context | None = None, log: Callable[[str], None] = print) -> dict:
    """Every measurement, as a dict (what ``waterrock bench procam`` prints and saves)."""
    from waterrock.procam.rig import VirtualRig
    from waterrock.render.command import scene_rock
    from waterrock.render.target import release_context, standalone_context
    from waterrock.resources import REPO_ROOT
    from waterrock.scene import load_scene

    camera_size, projector_size = tuple(int(v) for v in camera_size), tuple(int(v) for v in projector_size)
    mesh = scene_rock(load_scene(REPO_ROOT / "scenes" / "default.toml"))
    camera, projector = rig_devices(camera_size, projector_size)
    own = ctx is None
    ctx = standalone_context() if own else ctx
    try:
        rig = VirtualRig(mesh, [projector], camera, ctx=ctx)
        try:
            log(f"procam: capturing {projector_size[0]}x{projector_size[1]} Gray code with a "
                f"{camera_size[0]}x{camera_size[1]} camera")
            (captures, white, black), capture_s = _seconds(lambda: capture(rig, projector_size))
            depth = rig.depth()
            log("procam: decoding")
            decode, decoded = bench_decode(captures, white, black, projector_size, repeat, sample,
                                           np.random.default_rng(0))
            decode["capture_s"] = capture_s
            log("procam: solving")
            solved, fitted = bench_solve(rig, decoded, mesh, depth, projector_size)
        finally:
            rig.release()
        log("procam: drawing onto the rock and through the corner pin")
        render = bench_render(ctx, mesh, fitted, projector_size, render_repeat or max(10, 4 * repeat))
        renderer = ctx.info["GL_RENDERER"]
    finally:
        if own:
            release_context(ctx)
    return {"camera": list(camera_size), "projector": list(projector_size), "mesh_faces": int(len(mesh.faces)),
            "renderer": renderer, "decode": decode, "solve": solved, "render": render,
            "meets_goal": decode["seconds"] <= GOAL_DECODE_S if (camera_size, projector_size) == (
                CAMERA_SIZE, PROJECTOR_SIZE) else None}


def figures(result: dict) -> dict[str, dict]:
    """The ratios the regression guard compares (see bench/figures.py)."""
    (cw, ch), (pw, ph) = result["camera"], result["projector"]
    key = f"procam.c{cw}x{ch}.p{pw}x{ph}"
    d, r = result["decode"], result["render"]
    return {
        f"{key}.decode_speedup": {"value": float(d["speedup"]), "better": "higher", "floor": 0.0,
                                  "what": f"OpenCV getProjPixel's time for the frame / graycode.decode's, "
                                          f"{cw}x{ch} camera, {pw}x{ph} projector"},
        f"{key}.warp_over_onrock": {"value": float(1.0 / r["ratio"]), "better": "higher", "floor": 0.0,
                                    "what": f"corner-pin pass / on-rock pass, ms an output at {pw}x{ph}"},
    }


def table(result: dict) -> str:
    (cw, ch), (pw, ph) = result["camera"], result["projector"]
    d, s, r = result["decode"], result["solve"], result["render"]
    ref = d["reference"]
    lines = [
        f"procam on the simulated rig: the default scene's boulder ({result['mesh_faces']} faces), a {cw}x{ch} "
        f"camera, a {pw}x{ph} projector; GL {result['renderer']}",
        f"capture of {d['frames']} frames (the simulation, not timed below): {d['capture_s']:.2f} s",
        f"{'decode':<34}{'median s':>10}{'IQR s':>8}{'lit':>7}{'valid':>7}",
        f"{'graycode.decode (whole frame)':<34}{d['seconds']:>10.3f}{d['stats']['iqr_ms'] / 1000:>8.3f}"
        f"{d['share_lit']:>7.1%}{d['share_valid']:>7.1%}",
        f"{'OpenCV getProjPixel, whole frame':<34}{ref['seconds_frame']:>10.2f}{'':>8}"
        f"  ({ref['us_per_pixel']:.1f} us a pixel on {ref['sample']} lit pixels x {cw * ch:,})",
        f"{'OpenCV getProjPixel, lit pixels':<34}{ref['seconds_lit']:>10.2f}",
        f"  {d['speedup']:.0f}x the reference over the frame, {d['speedup_lit']:.1f}x over its lit pixels only; "
        f"agreement on the sample {d['agreement']:.2%} ({d['disagreements']} pixels differ; the reference "
        f"decodes {ref['share_decoded']:.1%} of them)",
        f"{'solve':<34}{'s':>10}",
        *(f"{label:<34}{s[k]:>10.3f}" for label, k in (
            ("camera pose (ICP from 6 cm, 3 deg)", "camera_pose_s"), ("block_correspondences", "correspondences_s"),
            ("rock_points", "rock_points_s"), ("solve_projector", "projector_s"), ("total", "total_s"))),
        f"  {s['pairs']} pairs, {s['rock_points']} on the rock, {s['pairs_kept']} kept; reprojection "
        f"{s['reprojection_rms_px']:.3f} px RMS; camera pose off by {s['camera_error_cm']:.2f} cm, "
        f"{s['camera_error_deg']:.3f} deg; projector by {s['projector_error_cm']:.2f} cm, "
        f"{s['projector_error_deg']:.3f} deg",
        f"{'render an output at ' + f'{pw}x{ph}':<34}{'median ms':>10}{'IQR ms':>8}",
        f"{'OnRockPass.draw (onto the rock)':<34}{r['onrock']['median_ms']:>10.2f}{r['onrock']['iqr_ms']:>8.2f}",
        f"{'WarpPass.draw (flat corner pin)':<34}{r['warp']['median_ms']:>10.2f}{r['warp']['iqr_ms']:>8.2f}",
        f"  on the rock / flat: {r['ratio']:.2f}x ({r['repeat']} repeats each, after warm-up; the rock covers "
        f"{r['onrock_share_lit']:.1%} of the output)",
    ]
    goal = result.get("meets_goal")
    state = "not judged (other sizes)" if goal is None else ("met" if goal else "NOT met")
    lines.append(f"goal: decode <= {GOAL_DECODE_S:g} s a projector (1280x720 camera, 1920x1080 projector): {state} "
                 f"({d['seconds']:.2f} s)")
    return "\n".join(lines)


def _size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--camera", type=_size, default=CAMERA_SIZE, metavar="WxH", help="camera size (1280x720)")
    ap.add_argument("--projector", type=_size, default=PROJECTOR_SIZE, metavar="WxH",
                    help="projector size (1920x1080)")
    ap.add_argument("--repeat", type=int, default=5, help="decodes timed (the render passes: max(10, 4x))")
    ap.add_argument("--sample", type=int, default=REFERENCE_SAMPLE, help="lit pixels the reference decodes")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    result = run_benchmark(args.camera, args.projector, args.repeat, sample=args.sample)
    return report(result, table, args.json)


if __name__ == "__main__":
    main()
