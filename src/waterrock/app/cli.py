"""The ``waterrock`` command.

    waterrock [run] [--scene S] [--arch A] [--seconds T] [--screenshot PNG]   the installation
    waterrock project [--scene S] [--monitor N ...] [--list-monitors]         on the projectors
    waterrock run|project --publish PORT [--encoding f32|f16|q16] [--lines-only]   a simulation node
    waterrock project --from tcp://host:port [--headless]      a render node: draws what one publishes
    waterrock render --scene S --seconds T --out out.mp4|dir [--resolution W H] [--fps F] [--codec C]
    waterrock record SOURCE OUT [--seconds T]        record a camera / sensor to replay later
    waterrock track SOURCE [--scene S] [--out preview.mp4] [--show]   the tracker alone, with a summary
    waterrock calibrate --source SPEC [--scene S]    click point pairs, save the calibration
    waterrock calibrate --auto | --check [--rig virtual]   projectors on the rock: calibrate, measure drift
    waterrock bench [solver|render|tracker|frame|sdf|procam|portals|fanout|governor|all] [--sizes ...]
                    [--json P] [--plot P] [--compare B]
    waterrock soak --hours H [--faults] [--json P]   unattended at accelerated time, a season's faults injected
    waterrock scene --from-mesh ROCK [--out S.toml] [--units U] [--up y|z] [--max-faces N] [--force]
                                                     a starting scene around your own rock's mesh

Bad input (an unknown scene, an invalid scene file, an unknown backend) is one line on stderr
and exit status 2; a crash while running is logged with its cause and exits 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from waterrock.app.logs import setup_logging

log = logging.getLogger("waterrock")

DEFAULT_SCENE = "default"
BENCHMARKS = ("solver", "render", "tracker", "frame", "sdf", "procam", "portals", "fanout", "governor")
ARCHES = ("cuda", "vulkan", "metal", "cpu", "x64", "arm64")
MIN_SOAK_HOURS = 0.005  # 18 s: 3 s of warm-up, 6 s of quiet end, faults between


class UsageError(Exception):
    """Bad input from the operator: reported in one line, exit status 2."""


def _default_scene() -> str:
    from waterrock.resources import resource_dir

    return DEFAULT_SCENE if (resource_dir("scenes") / f"{DEFAULT_SCENE}.toml").exists() else "dam_break"


def _scene_option(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument(
        "--scene",
        "-s",
        required=required,
        default=None,
        help="a scene file (.toml) or the name of a shipped scene (default: 'default')",
    )


def _arch_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--arch", default=None, help=f"Taichi backend: {', '.join(ARCHES[:4])} (default: best available)"
    )


def _publish_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--publish", default=None, metavar="ENDPOINT",
                   help="a simulation node: publish every frame's particles for render nodes, on a port of "
                   "127.0.0.1 (5720) or an interface named whole (tcp://192.168.1.10:5720)")
    p.add_argument("--encoding", choices=("f32", "f16", "q16"), default="f32",
                   help="with --publish: f32 exact (29 bytes a particle), f16 half floats or q16 16-bit positions "
                   "(17 bytes; for 1 GbE)")
    p.add_argument("--lines-only", action="store_true",
                   help="with --publish: only the particles that draw lines ([render.trails] share)")
    p.add_argument("--screenshot-frame", type=int, default=None, metavar="N",
                   help="headless: save the picture of simulation frame N to --screenshot as it is drawn")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="waterrock",
        description="Real-time water over a rock; visitors become rocks the water flows around.",
    )
    parser.add_argument(
        "--log-file", type=Path, default=None, help="also log to this file (rotated at 10 MB, 5 kept)"
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-v info, -vv debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="the installation in a window (the default command)")
    _scene_option(run)
    _arch_option(run)
    run.add_argument(
        "--seconds", type=float, default=None, help="stop after this long (from the first frame)"
    )
    run.add_argument(
        "--screenshot", type=Path, default=None, help="PNG path for S, and saved on exit with --seconds"
    )
    run.add_argument("--headless", action="store_true", help="no window: print stats every second")
    run.add_argument("--overlay", action="store_true", help="start with the debug overlay shown (D toggles)")
    run.add_argument("--fullscreen", action="store_true", help="start fullscreen (F toggles)")
    run.add_argument(
        "--size", type=int, nargs=2, metavar=("W", "H"), default=None, help="window size in pixels"
    )
    _publish_options(run)

    project = sub.add_parser("project", help="the installation on its projectors: fullscreen outputs, warps, blends")
    _scene_option(project)
    _arch_option(project)
    project.add_argument(
        "--monitor",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="monitors to show on, one output each (default: the scene's outputs, or the primary monitor)",
    )
    project.add_argument("--list-monitors", action="store_true", help="print the monitors and their numbers, then exit")
    project.add_argument("--seconds", type=float, default=None, help="stop after this long (from the first frame)")
    project.add_argument(
        "--screenshot", type=Path, default=None, help="PNG path for S (one per output), saved on exit with --seconds"
    )
    project.add_argument("--overlay", action="store_true", help="start with the debug overlay shown (D toggles)")
    project.add_argument("--from", dest="source", default=None, metavar="ENDPOINT",
                         help="a render node: no solver, draw the frames a simulation node publishes at "
                         "tcp://host:port (or a port of 127.0.0.1) on these outputs")
    project.add_argument("--headless", action="store_true",
                         help="with --from: draw offscreen at the scene's resolution, stats every second")
    _publish_options(project)

    render = sub.add_parser("render", help="draw a scene offscreen into a video file or a folder of PNGs")
    _scene_option(render)
    _arch_option(render)
    render.add_argument("--seconds", type=float, required=True, help="seconds of water to render")
    render.add_argument(
        "--out", type=Path, required=True, help="out.mp4 (.mov .mkv .avi) or a folder for PNGs"
    )
    render.add_argument("--resolution", type=int, nargs=2, metavar=("W", "H"), default=None)
    render.add_argument("--fps", type=float, default=60.0, help="output frames per second (default 60)")
    render.add_argument("--codec", default=None, metavar="CODEC",
                        help="h264 (.mp4 .mov .mkv), prores (.mov .mkv), hap or hapq (.mov, for media servers), "
                        "mjpeg (.avi); default: h264 for .mp4 and .mkv, prores for .mov")

    record = sub.add_parser("record", help="record a camera or depth sensor to replay as a source")
    record.add_argument(
        "source", help="synthetic[:script], camera:N, video:FILE, rtsp://..., realsense, kinect"
    )
    record.add_argument("out", type=Path, help="a folder (PNG frames) or a .npz file")
    record.add_argument("--seconds", type=float, default=10.0)
    record.add_argument("--frames", type=int, default=None, help="stop after this many frames instead")

    trk = sub.add_parser("track", help="the tracker alone on a camera, video or recording: masks, tracks, speeds")
    trk.add_argument("source", help="camera:N, a video file, a recording (folder, .npz, .bag, .mkv), "
                     "synthetic[:script]")
    _scene_option(trk)
    trk.add_argument("--out", type=Path, default=None, help="write the annotated frames: a video (.mp4 .avi .mov "
                     ".mkv) or a folder of PNGs")
    trk.add_argument("--show", action="store_true", help="show the annotated frames in a window (q quits)")
    trk.add_argument("--seconds", type=float, default=None, help="stop after this many seconds of the source's clock")
    trk.add_argument("--frames", type=int, default=None, help="stop after this many frames")
    trk.add_argument("--save-background", type=Path, default=None, metavar="NPZ",
                     help="learn the empty venue from the first frames and save it here (the scene's "
                     "[tracking] background_file)")
    trk.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the summary here")

    cal = sub.add_parser(
        "calibrate", help="the tracker's camera (click point pairs), or the projectors on the rock (--auto, --check)",
        description="Without --auto or --check: click point pairs on a camera frame and save the tracker's "
        "calibration. --auto: project Gray-code patterns from every output, decode them with the camera, and solve "
        "each projector's lens and pose on the rock (writes <scene>.procam.json beside the scene, keeping the old "
        "one as .previous.json, and a residual picture per output). --check: measure each output's drift since "
        "then; exit 1 when one is over the scene's [projection] drift_warn_px.")
    _scene_option(cal)
    mode = cal.add_mutually_exclusive_group()
    mode.add_argument("--auto", action="store_true", help="calibrate the projectors on the rock")
    mode.add_argument("--check", action="store_true", help="measure the projectors' drift since --auto")
    cal.add_argument("--source", default=None, help="the camera or sensor, as for record (--auto/--check: "
                     "default the scene's [tracking] source)")
    cal.add_argument("--rig", choices=("screen", "virtual"), default="screen",
                     help="--auto/--check: the scene's outputs and camera, or the simulated rig (no hardware)")
    cal.add_argument("--monitors", type=int, nargs="+", default=None, metavar="N",
                     help="--auto/--check: the outputs' monitors, as for project")
    cal.add_argument("--settle", type=float, default=0.3, metavar="S",
                     help="--auto/--check: seconds a pattern shows before the camera's frame is taken (default 0.3)")
    cal.add_argument("--drift-px", type=float, default=0.0, metavar="PX",
                     help="--check --rig virtual: move the simulated output 0 by this many pixels first")
    cal.add_argument(
        "--out", type=Path, default=None,
        help="default: <scene>.calibration.json (clicks) or <scene>.procam.json (--auto) beside the scene"
    )

    bench = sub.add_parser(
        "bench",
        help="benchmarks: the solver (with peers), the renderer, the tracker, the whole frame, the rock's SDF, "
        "the projector calibration, the portals between works",
        description="Measure, print tables, write JSON and a plot, compare with a baseline (exit 1 on a "
        "regression of more than 20 % in any ratio measured within the run).",
    )
    bench.add_argument("which", nargs="?", choices=(*BENCHMARKS, "all"), default="all")
    _arch_option(bench)
    bench.add_argument(
        "--sizes", nargs="+", default=None,
        help="solver: particle counts (default 16000 64000 256000; with a GPU also 1M); render: segment counts; "
        "tracker: WxH frame sizes; frame: particle counts the scene is scaled to, after its own size; "
        "sdf: grid resolutions (default 64 128 256); procam: the camera's and the "
        "projector's WxH (default 1280x720 1920x1080); portals: particles a frame (default 10 100 1000); fanout: "
        "particles a frame to 1, 2 and 4 render nodes (default 100000 1000000)",
    )
    bench.add_argument("--repeat", type=int, default=5, help="timed repeats per figure, after warm-up (default 5)")
    bench.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the results here")
    bench.add_argument("--plot", type=Path, default=None, metavar="PATH", help="throughput against N, a PNG")
    bench.add_argument("--compare", type=Path, default=None, metavar="BASELINE",
                       help="a results JSON (benchmarks/baseline.json): flag figures more than 20 %% worse")
    bench.add_argument("--results", type=Path, default=None, metavar="PATH",
                       help="report (and --compare) an earlier run's JSON instead of measuring")
    bench.add_argument("--methods", nargs="+", choices=("pbf", "dfsph", "wcsph"), default=["pbf", "dfsph", "wcsph"])
    bench.add_argument("--resolution", nargs="+", default=None, metavar="WxH",
                       help="render: output sizes (default 1280x720 1920x1080); frame: the first one")
    bench.add_argument("--frames", type=int, default=120, help="frames of the default scene to time (0: skip)")
    bench.add_argument("--no-fps-probe", action="store_true", help="skip the search for the largest N at 60 fps")
    bench.add_argument("--no-peers", action="store_true", help="skip SPlisHSPlasH and Warp")
    bench.add_argument("--peer-sizes", nargs="+", default=None, help="particle counts for the peers (16000 32000)")
    bench.add_argument("--peer-seconds", type=float, default=0.05, help="simulated seconds per peer run (0.05)")
    bench.add_argument("--scene", default="default", help="frame, governor: the scene they run (default)")
    bench.add_argument("--share", type=float, default=None, metavar="S",
                       help="frame: the share of particles drawing lines, [render.trails] share (default: the scene's)")
    bench.add_argument("--governor-seconds", type=float, default=20.0, help="governor: seconds a run (20)")
    bench.add_argument("--governor-runs", type=int, default=2,
                       help="governor: runs with it and without, alternating (2)")
    bench.add_argument("--radius", type=float, default=0.01, help="particle radius of the peers' dam break (0.01 m)")

    soak = sub.add_parser(
        "soak",
        help="the scene unattended at accelerated time, a season's faults injected; a report",
        description="A benchmark, not a test: the scene headless and not drawn, stepped as fast as it goes, "
        "with the synthetic visitors and the OSC listener; --faults compresses a 24-hour season of faults (camera "
        "loss, frozen and garbage frames, OSC garbage and bursts, scene edits, torn files, a full disk, "
        "SIGSTOP) into the run. Exit 1 on a hang, a crash, a particle lost or memory or threads that grow.",
    )
    _scene_option(soak)
    _arch_option(soak)
    soak.add_argument("--hours", type=float, required=True, help="wall-clock hours to run")
    soak.add_argument("--faults", nargs="?", const="all", default=None, metavar="KINDS",
                      help="inject a season's faults, compressed into the run: all kinds, or those named "
                      "(camera_loss,torn_write,...)")
    soak.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the report here")
    soak.add_argument("--seed", type=int, default=0, help="the fault schedule's random seed (default 0)")

    scn = sub.add_parser(
        "scene", help="write a starting scene around your own rock's mesh (OBJ/PLY/STL/GLB, any units)",
        description="Read the rock, detect its units and up axis (or take them from --units and --up), decimate it "
        "when it is huge, and write a scene: the domain and emitters from its bounds, a view that frames it.",
    )
    scn.add_argument("--from-mesh", type=Path, required=True, metavar="MESH", help="the rock: OBJ, PLY, STL or GLB")
    scn.add_argument("--out", type=Path, default=None, metavar="SCENE",
                     help="the scene file to write (default: <mesh name>.toml in the current folder)")
    scn.add_argument("--units", choices=("m", "cm", "mm", "in", "auto"), default="auto",
                     help="the mesh's units (default: from the file, else guessed from its size)")
    scn.add_argument("--up", choices=("y", "z", "auto"), default="auto",
                     help="the mesh's up axis (default: from the file, else guessed from its shape)")
    scn.add_argument("--max-faces", type=int, default=None, metavar="N",
                     help="decimate a mesh with more faces, for the rock's SDF (default 100000)")
    scn.add_argument("--force", action="store_true", help="overwrite the scene (and a decimated copy) if they exist")
    return parser


# --- checks at the edge ---------------------------------------------------------------------------


def _check_arch(arch: str | None) -> str | None:
    wanted = arch or os.environ.get("TI_ARCH") or None
    if wanted is not None and wanted.strip().lower() not in ARCHES:
        source = "--arch" if arch else "TI_ARCH"
        raise UsageError(
            f"unknown Taichi backend {wanted!r} ({source}): choose one of {', '.join(ARCHES[:4])}"
        )
    return arch


def _load(scene_arg: str | None, calibration: bool = True):
    """The scene, its named files checked (``calibration`` False: the calibration may be missing)."""
    from waterrock import files
    from waterrock.scene import SceneError, check_scene_files, load_scene

    name = scene_arg or _default_scene()
    try:
        scene = load_scene(name, check_files=False)
        check_scene_files(scene, calibration=calibration)
        return scene
    except (SceneError, FileNotFoundError) as err:
        raise UsageError(files.one_line(err)) from None


def _prepare_rock(scene) -> None:
    """Read the scene's rock and build (or load from the cache) its signed-distance volume before
    Taichi starts: a missing, empty, garbage, open or unrepairable mesh ends the command here,
    in one line naming the file, and the solver later gets the same volume from the cache."""
    import warnings

    from waterrock.solver.mesh_sdf import MeshError, MeshWarning, scene_rock_sdf

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MeshWarning)
            scene_rock_sdf(scene.rock, scene.fluid.support_radius)
    except (MeshError, FileNotFoundError) as err:
        raise UsageError(f"{scene.path or '<scene>'}: [rock.mesh] {err}") from None
    for w in caught:  # a repaired rock, or one whose inside is inferred: one log line each
        log.warning("%s", w.message)


def _positive(name: str, value: float | None) -> None:
    if value is not None and not value > 0:
        raise UsageError(f"{name} must be a positive number, got {value}")


# --- commands ----------------------------------------------------------------------------------------


def display_problem() -> str | None:
    """Why no window can open here, or None if one may."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    return None


def _capture(args, headless: bool) -> dict | None:
    """--screenshot-frame N: {N: --screenshot}, for a headless run."""
    if args.screenshot_frame is None:
        return None
    if not headless:
        raise UsageError("--screenshot-frame saves a headless run's picture: add --headless")
    if args.screenshot is None:
        raise UsageError("--screenshot-frame N needs --screenshot PATH to save the picture to")
    if args.screenshot_frame < 0:
        raise UsageError(f"--screenshot-frame takes a frame number 0, 1, ..., got {args.screenshot_frame}")
    return {args.screenshot_frame: args.screenshot}


def _publisher(args, scene):
    """The render nodes' publisher of --publish, or None."""
    if args.publish is None:
        if args.lines_only or args.encoding != "f32":
            raise UsageError("--encoding and --lines-only are for --publish")
        return None
    from waterrock.net.nodes import NodeError, SnapshotPublisher

    try:
        return SnapshotPublisher(args.publish, args.encoding,
                                 scene.render.trails.share if args.lines_only else None)
    except NodeError as err:
        raise UsageError(f"--publish: {err}") from None


def cmd_run(args) -> int:
    scene = _load(args.scene)
    arch = _check_arch(args.arch)
    _positive("--seconds", args.seconds)
    capture = _capture(args, args.headless)
    _prepare_rock(scene)
    publisher = _publisher(args, scene)
    problem = None if not args.headless else "--headless"
    if problem is None:
        problem = display_problem()
    if problem is None:
        from waterrock.app.window import WindowError, run_window

        try:
            return run_window(
                scene,
                arch=arch,
                seconds=args.seconds,
                screenshot=args.screenshot,
                fullscreen=args.fullscreen,
                overlay=args.overlay,
                size=args.size,
                publisher=publisher,
            )
        except WindowError as err:
            problem = str(err)
    if problem != "--headless":
        print(
            f"waterrock: cannot open a window: {problem}; running headless (stats every second)",
            file=sys.stderr,
        )
    from waterrock.app.session import run_headless

    return run_headless(scene, arch=arch, seconds=args.seconds, screenshot=args.screenshot, publisher=publisher,
                        capture=capture)


def cmd_project(args) -> int:
    problem = display_problem()
    if args.list_monitors:
        if problem:
            raise UsageError(f"cannot list monitors: {problem}")
        from waterrock.app.projection import describe_monitors
        from waterrock.app.window import WindowError

        try:
            print("\n".join(describe_monitors()) or "no monitors")
        except WindowError as err:
            raise UsageError(f"cannot list monitors: {err}") from None
        return 0
    scene = _load(args.scene)
    arch = _check_arch(args.arch)
    _positive("--seconds", args.seconds)
    if args.monitor and min(args.monitor) < 0:
        raise UsageError(f"--monitor takes monitor numbers 0, 1, ..., got {min(args.monitor)}")
    if args.source is not None:
        return _render_node(args, scene, problem)
    if args.headless:
        raise UsageError("project --headless is a render node's (with --from); a simulation without outputs is "
                         "`waterrock run --headless`")
    _capture(args, False)
    _prepare_rock(scene)
    publisher = _publisher(args, scene)
    # No headless fallback: a boot script wants the outputs or a failure (so that it restarts).
    if problem is None:
        from waterrock.app.projection import run_projection
        from waterrock.app.window import WindowError

        try:
            return run_projection(
                scene,
                arch=arch,
                monitors=args.monitor,
                seconds=args.seconds,
                screenshot=args.screenshot,
                overlay=args.overlay,
                publisher=publisher,
            )
        except WindowError as err:
            problem = str(err)
    if publisher is not None:
        publisher.close()
    log.info("cannot open the projection outputs: %s", problem)  # for the log file; stderr has it below
    print(f"waterrock: error: cannot open the projection outputs: {problem}", file=sys.stderr)
    return 1


def _render_node(args, scene, problem: str | None) -> int:
    """``project --from``: draw what a simulation node publishes."""
    if args.publish is not None:
        raise UsageError("--from and --publish: a render node draws frames, it does not make them")
    capture = _capture(args, args.headless)
    if not args.headless and problem is not None:
        print(f"waterrock: error: cannot open the projection outputs: {problem} (--headless draws offscreen)",
              file=sys.stderr)
        return 1
    from waterrock.app.render_node import run_render_node
    from waterrock.app.window import WindowError
    from waterrock.net.nodes import NodeError

    try:
        return run_render_node(scene, args.source, headless=args.headless, monitors=args.monitor,
                               seconds=args.seconds, screenshot=args.screenshot, capture=capture,
                               overlay=args.overlay)
    except NodeError as err:
        raise UsageError(f"--from: {err}") from None
    except WindowError as err:
        print(f"waterrock: error: cannot open the projection outputs: {err}", file=sys.stderr)
        return 1


def cmd_render(args) -> int:
    scene = _load(args.scene)
    arch = _check_arch(args.arch)
    _positive("--seconds", args.seconds)
    _positive("--fps", args.fps)
    if args.resolution is not None:
        from waterrock.render.command import MAX_RESOLUTION

        w, h = args.resolution
        if not (16 <= w <= MAX_RESOLUTION[0] and 16 <= h <= MAX_RESOLUTION[1]):
            raise UsageError(f"--resolution {w} {h} outside 16x16 .. {MAX_RESOLUTION[0]}x{MAX_RESOLUTION[1]}")
    from waterrock.render.command import check_output, render_command, video_codec

    try:
        check_output(args.out)
    except ValueError as err:
        raise UsageError(f"--out {err}") from None
    try:  # before the solver starts: a codec the file or the size cannot take is bad input
        video_codec(args.out, args.codec, tuple(args.resolution or scene.render.resolution))
    except ValueError as err:
        raise UsageError(str(err)) from None
    _prepare_rock(scene)
    from waterrock.app.session import Inputs, stepped_snapshots
    from waterrock.solver.solver import Solver

    solver = Solver(scene, arch=arch)
    inputs = Inputs(scene, solver, stepped=True)
    try:
        n = render_command(
            scene.path,
            args.seconds,
            args.out,
            tuple(args.resolution) if args.resolution else None,
            args.fps,
            snapshots=stepped_snapshots(scene, solver, args.fps, inputs),
            codec=args.codec,
        )
    finally:
        inputs.close()
    print(f"wrote {n} frames to {args.out}")
    return 0


def cmd_record(args) -> int:
    from waterrock.tracking.record import record_command

    _positive("--seconds", args.seconds)
    try:
        n = record_command(args.source, args.out, seconds=args.seconds, frames=args.frames)
    except ValueError as err:  # an unknown source spec
        raise UsageError(str(err)) from None
    print(f"recorded {n} frames to {args.out}")
    return 0


def cmd_track(args) -> int:
    from waterrock import files
    from waterrock.app.track import track
    from waterrock.render.command import check_output

    scene = _load(args.scene)
    _positive("--seconds", args.seconds)
    _positive("--frames", args.frames)
    settings = scene.tracking
    if args.out is not None:
        try:
            check_output(args.out)
        except ValueError as err:
            raise UsageError(str(err)) from None
    if args.show and display_problem():
        raise UsageError(f"--show needs a window: {display_problem()}; use --out to write the frames instead")
    if args.save_background is not None:
        if args.save_background.suffix != ".npz":
            raise UsageError(f"--save-background {args.save_background}: give a .npz file")
        if args.save_background.exists():
            raise UsageError(f"--save-background {args.save_background}: exists; remove it first or name another")
        settings = settings.model_copy(update={"background_file": args.save_background.resolve()})
    try:
        summary = track(args.source, settings, out=args.out, show=args.show, seconds=args.seconds,
                        frames=args.frames)
    except ValueError as err:  # an unknown source spec, a calibration of the wrong kind
        raise UsageError(str(err)) from None
    except KeyboardInterrupt:
        print("tracking interrupted", file=sys.stderr)
        return 130
    print(summary.text())
    if args.save_background is not None:
        saved = args.save_background.exists()
        print(f"background: {'saved to ' + str(args.save_background) if saved else 'NOT saved'}")
    if args.json is not None:
        files.write_json(args.json, summary.as_dict())
    return 0


def cmd_calibrate(args) -> int:
    from waterrock.tracking.calibrate import calibrate_command

    scene = _load(args.scene, calibration=False)
    if args.auto or args.check:
        return _calibrate_projectors(scene, args)
    if args.source is None:
        raise UsageError("calibrate needs --source (the camera to click on), or --auto / --check")
    if display_problem():
        raise UsageError(f"calibrate needs a window to click in: {display_problem()}")
    try:
        calibrate_command(scene.path, args.source, out=args.out)
    except KeyboardInterrupt:
        print("calibration cancelled", file=sys.stderr)
        return 1
    except ValueError as err:
        raise UsageError(str(err)) from None
    return 0


def _calibrate_projectors(scene, args) -> int:
    from waterrock.app.calibrate_auto import CalibrationUsageError, run_auto, run_check
    from waterrock.app.window import WindowError

    if not 0.0 <= args.settle <= 10.0:
        raise UsageError(f"--settle {args.settle:g}: give 0 to 10 seconds")
    if args.drift_px and (args.rig != "virtual" or not args.check):
        raise UsageError("--drift-px moves the simulated rig's output: it goes with --check --rig virtual")
    if args.rig == "screen" and display_problem():
        raise UsageError(f"calibrate --rig screen shows patterns on the outputs: {display_problem()} "
                         f"(--rig virtual runs the simulated rig)")
    try:
        if args.auto:
            return run_auto(scene, args.rig, args.source, args.monitors, args.out, args.settle)
        return run_check(scene, args.rig, args.source, args.monitors, args.out, args.settle, args.drift_px)
    except (CalibrationUsageError, WindowError) as err:
        raise UsageError(str(err)) from None


def cmd_bench(args) -> int:
    from waterrock.bench.command import main as bench_main

    _check_arch(args.arch)
    return bench_main(args)


def cmd_soak(args) -> int:
    scene = _load(args.scene)
    _check_arch(args.arch)
    _positive("--hours", args.hours)
    if args.faults and args.hours < MIN_SOAK_HOURS:
        raise UsageError(f"--faults needs --hours {MIN_SOAK_HOURS} or more (a warm-up, faults, a quiet end)")
    from waterrock.bench.soak import fault_kinds
    from waterrock.bench.soak import main as soak_main

    try:
        fault_kinds(args.faults)
    except ValueError as err:
        raise UsageError(str(err)) from None
    _prepare_rock(scene)

    return soak_main(scene, args)


def cmd_scene(args) -> int:
    from waterrock.app.scene_from_mesh import DEFAULT_MAX_FACES, SceneFromMeshError, scene_from_mesh
    from waterrock.solver.mesh_sdf import MeshError

    out = args.out if args.out is not None else Path(f"{args.from_mesh.stem}.toml")
    max_faces = args.max_faces if args.max_faces is not None else DEFAULT_MAX_FACES
    try:
        result = scene_from_mesh(args.from_mesh, out, units=args.units, up=args.up, max_faces=max_faces,
                                 force=args.force)
    except (SceneFromMeshError, MeshError, FileNotFoundError) as err:
        raise UsageError(str(err)) from None
    print("\n".join(result.lines))
    return 0


COMMANDS = {
    "run": cmd_run,
    "project": cmd_project,
    "render": cmd_render,
    "record": cmd_record,
    "track": cmd_track,
    "calibrate": cmd_calibrate,
    "bench": cmd_bench,
    "soak": cmd_soak,
    "scene": cmd_scene,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    argv = _with_command(argv)  # no subcommand: `waterrock` is `waterrock run`
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.log_file)
    from waterrock.app.loop import STOP_GRACE, set_stop_deadline

    set_stop_deadline(STOP_GRACE)  # SIGTERM ends the command within STOP_GRACE s, done or not
    try:
        return COMMANDS[args.command](args)
    except UsageError as err:
        print(f"waterrock: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the frame loop took over the signal (while starting)
        print("waterrock: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - bad input surfacing late (one line, 2) or a crash (logged, 1)
        from waterrock.backend import BackendError
        from waterrock.render.programs import ShaderError

        if isinstance(err, (BackendError, ShaderError)):
            print(f"waterrock: error: {err}", file=sys.stderr)
            return 2
        # anything else is a crash: its traceback goes to the log (and the log file), status 1
        log.critical("waterrock %s failed: %s: %s", args.command, type(err).__name__, err, exc_info=err)
        return 1


def _with_command(argv: list[str]) -> list[str]:
    """Insert 'run' after the global options (--log-file PATH, -v) unless a command or --help follows."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--log-file":
            i += 2
        elif a.startswith("--log-file=") or a == "--verbose" or (a.startswith("-v") and set(a[1:]) <= {"v"}):
            i += 1
        else:
            break
    if i < len(argv) and (argv[i] in COMMANDS or argv[i] in ("-h", "--help")):
        return argv
    return [*argv[:i], "run", *argv[i:]]


if __name__ == "__main__":
    sys.exit(main())
