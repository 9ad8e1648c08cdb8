"""Tracker benchmark: per-frame cost of the depth and colour pipelines, and runner latency.

    waterrock bench tracker [--sizes 640x480 1280x720] [--repeat 60] [--json out.json]

Each pipeline is timed on frames rendered beforehand (synthetic visitors), on one CPU core
(cv2.setNumThreads(1)), against baselines measured in the same run on the same frames:
cv2.connectedComponentsWithStats alone on the frame's mask, and the segmentation without
morphology or blob measurement. Latency is from the moment a source yields a frame to the
moment its obstacles are returned by TrackerRunner.latest(). Goal: <= 5 ms per 640x480 frame.
"""

from __future__ import annotations

import argparse
import platform
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from waterrock.bench.stats import report, summarize
from waterrock.tracking.crowd import CrowdSource, Visitor
from waterrock.tracking.frame import Frame
from waterrock.tracking.pipeline import ColorPipeline, DepthPipeline
from waterrock.tracking.runner import TrackerRunner
from waterrock.tracking.segment import DepthBackground
from waterrock.tracking.settings import TrackingSettings
from waterrock.tracking.sources import FrameSource
from waterrock.tracking.synthetic import Person, SyntheticScript, SyntheticSource, overhead_camera

GOAL_MS = 5.0  # per 640x480 depth frame, one core
COLOR_GOAL_RATIO = 1.5  # the colour pipeline's ms a frame over a plain MOG2 + connected-components loop's


def _stats(samples_s: list[float]) -> dict:
    ms = sorted(1000.0 * s for s in samples_s)
    return {**summarize(ms), "p95_ms": ms[int(0.95 * (len(ms) - 1))]}


def _time(fn, items) -> list[float]:
    out = []
    for x in items:
        t = time.perf_counter()
        fn(x)
        out.append(time.perf_counter() - t)
    return out


def depth_frames(width: int, height: int, n: int) -> tuple[list[Frame], DepthBackground, SyntheticSource]:
    src = SyntheticSource("gather", camera=overhead_camera(width, height), loop=True)
    empty = SyntheticSource(SyntheticScript((), 1.0, src.script.wall_z), camera=src.calibration, loop=False)
    bg = DepthBackground.learn([empty.render(i) for i in range(5)])
    start = 60  # a moment when all four visitors are in the room, one touching the wall
    frames = [Frame(i / 30, depth=src.render(i), index=i) for i in range(start, start + n)]
    return frames, bg, src


def color_crowd(width: int, height: int, n: int, fps: float = 30.0) -> CrowdSource:
    """Eight people pacing to and fro across a tiled floor (4 m across the picture, 2.25 m deep at
    16:9), two to a lane 0.55 m from the next, each with a shadow: all in view in every frame."""
    rng = np.random.default_rng(0)
    people = []
    for k in range(8):
        z = (-0.85, -0.3, 0.3, 0.85)[k // 2]
        ends = [(-1.7, z), (1.7, z)] if k % 2 else [(1.7, z), (-1.7, z)]
        leg = 3.4 / rng.uniform(0.8, 1.6)  # s to cross
        t0 = -rng.uniform(0.0, leg)  # somewhere along their first leg at t = 0
        waypoints = tuple((t0 + j * leg, *ends[j % 2]) for j in range(int((n / fps - t0) / leg) + 2))
        people.append(Visitor(Person(waypoints), shirt=tuple(int(c) for c in rng.integers(30, 220, 3))))
    return CrowdSource(people, n / fps, width=width, height=height, fps=fps)


def bench_color(width: int, height: int, repeat: int, fps: float = 30.0) -> dict:
    """The colour pipeline against the plain loop it replaced (MOG2 with its shadow label, then
    connected components), on the same frames; goal: at most COLOR_GOAL_RATIO times as long."""
    settings = TrackingSettings(floor_width=4.0, background_seconds=1.0)
    warmup = int(1.5 * fps)  # past the background's learning: the timed frames are tracked frames
    src = color_crowd(width, height, warmup + repeat, fps)
    frames = [Frame(i / fps, color=src.render(i), index=i) for i in range(warmup + repeat)]
    pipe = ColorPipeline(settings, src.calibration)
    mog = cv2.createBackgroundSubtractorMOG2(detectShadows=True)  # OpenCV's defaults, as a plain loop has them

    def plain(f: Frame) -> None:
        cv2.connectedComponentsWithStats(mog.apply(f.color), connectivity=8)

    for f in frames[:warmup]:
        pipe.process(f)
        plain(f)
    timed = frames[warmup:]
    full, base = [], []
    for f in timed:  # alternating, so the machine's moods fall on both alike
        full += _time(pipe.process, [f])
        base += _time(plain, [f])
    ours, theirs = _stats(full), _stats(base)
    return {
        "pipeline": ours,
        "baseline_mog2_and_connected_components": theirs,
        "ratio_to_baseline": ours["median_ms"] / theirs["median_ms"],
        "obstacles": len(pipe.process(frames[-1])),
        "people_in_view": int(sum(abs(t.position[0]) < 2.0 for t in src.truth(len(frames) - 1))),
    }


def bench_depth(width: int, height: int, repeat: int) -> dict:
    frames, bg, src = depth_frames(width, height, repeat + 5)
    settings = TrackingSettings(touch_plane=src.script.touch_plane)
    pipe = DepthPipeline(settings, src.calibration, bg)
    for f in frames[:5]:  # tracks confirmed, caches warm
        pipe.process(f)
    frames = frames[5:]
    full = _time(pipe.process, frames)
    seg = pipe.segmenter
    masks = [seg.segment(f.depth)[0] for f in frames]
    cc = _time(lambda m: cv2.connectedComponentsWithStats(m, connectivity=8), masks)
    bare = DepthPipeline(
        settings.model_copy(update={"open_px": 0, "close_px": 0}), src.calibration, bg
    ).segmenter
    naive = _time(lambda f: bare.segment(f.depth), frames)
    obstacles = len(pipe.process(frames[-1]))
    return {
        "pipeline": _stats(full),
        "baseline_connected_components": _stats(cc),
        "baseline_segment_no_morphology": _stats(naive),
        "obstacles": obstacles,
    }


class _Replay(FrameSource):
    """Pre-rendered frames at a fixed rate, noting when each was yielded."""

    def __init__(self, frames: list[Frame], fps: float, calibration) -> None:
        self.frames, self.fps, self.calibration = frames, fps, calibration
        self.yielded: dict[float, float] = {}

    def __iter__(self) -> Iterator[Frame]:
        t0 = time.perf_counter()
        for k, f in enumerate(self.frames):
            delay = t0 + k / self.fps - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.yielded[f.timestamp] = time.perf_counter()
            yield f
        threading.Event().wait(3600)  # a camera that stops: the runner fades, we are done by then


def bench_latency(width: int, height: int, repeat: int) -> dict:
    frames, bg, src = depth_frames(width, height, repeat)
    settings = TrackingSettings(touch_plane=src.script.touch_plane, stall_reconnect=60.0)
    replay = _Replay(frames, 30.0, src.calibration)
    runner = TrackerRunner(
        lambda: replay, settings, pipeline_factory=lambda frame, s: DepthPipeline(settings, s.calibration, bg)
    )
    seen: dict[float, float] = {}
    poll = []
    with runner:
        end = time.perf_counter() + repeat / 30.0 + 2.0
        while time.perf_counter() < end and len(seen) < len(frames):
            t = time.perf_counter()
            snap = runner.latest()
            poll.append(time.perf_counter() - t)
            if snap.timestamp not in seen and snap.timestamp in replay.yielded:
                seen[snap.timestamp] = time.perf_counter()
            time.sleep(0.0002)
    lat = [seen[ts] - replay.yielded[ts] for ts in seen if ts > frames[0].timestamp]
    return {"frame_to_latest": _stats(lat), "latest_call": _stats(poll), "frames": len(lat)}


class _Arrivals:
    """The frame loop's view of a tracker: when each new snapshot reached it, against when its
    frame reached the tracker (``arrived``: the child's board, or the runner's hook)."""

    def __init__(self, provider, arrived_of) -> None:
        self.provider, self.arrived_of = provider, arrived_of
        self.last_ts: float | None = None
        self.latency: list[float] = []

    def latest(self):
        snap = self.provider.latest()
        if len(snap) and snap.timestamp != self.last_ts:
            self.last_ts = snap.timestamp
            arrived = self.arrived_of(snap.timestamp)
            if arrived is not None:
                self.latency.append(time.monotonic() - arrived)
        return snap


def bench_beside_frame_loop(mode: str, seconds: float = 10.0, width: int = 640, height: int = 480,
                            fps: int = 30, draw: bool = True, warmup_frames: int = 40) -> dict:
    """The tracker ('process' or 'thread') on a synthetic depth camera at ``fps`` while the
    default scene's frame loop runs in this process (the solver and, when EGL is there, the
    software renderer): the share of the camera's frames it delivers, its ms a frame, and the
    latency from a frame's arrival to its obstacles being handed to the solver; measured once the
    tracker has delivered ``warmup_frames`` (past the background's learning)."""
    from waterrock.app.loop import FrameLoop
    from waterrock.app.session import OffscreenView
    from waterrock.scene import load_scene
    from waterrock.solver.solver import Solver
    from waterrock.tracking.process import TrackerProcess

    scene = load_scene("default")
    solver = Solver(scene)
    view = None
    if draw:
        try:
            view = OffscreenView(scene)
        except Exception as err:  # noqa: BLE001 - no EGL: the solver alone keeps the machine busy
            print(f"not drawn: {type(err).__name__}: {err}")
    settings = scene.tracking.model_copy(update={
        "source": "synthetic", "synthetic_script": "gather", "width": width, "height": height, "fps": fps,
        "realtime": True, "stall_reconnect": 60.0,
    })
    arrivals: dict[float, float] = {}
    if mode == "process":
        tracker = TrackerProcess(settings)

        def arrived_of(ts):
            return tracker._cached[2] if tracker._cached[1].timestamp == ts else None  # noqa: SLF001
    else:
        tracker = TrackerRunner(lambda: SyntheticSource("gather", camera=overhead_camera(width, height), fps=fps,
                                                        realtime=True), settings,
                                on_publish=lambda snap, frame, pipe, arrived, done: arrivals.__setitem__(
                                    snap.timestamp, arrived))

        def arrived_of(ts):
            return arrivals.get(ts)
    provider = _Arrivals(tracker, arrived_of)
    loop = FrameLoop(solver, provider, view, realtime=True)
    try:
        tracker.start()
        end = time.monotonic() + 120.0
        while tracker.state().frames < warmup_frames and time.monotonic() < end:
            loop.tick()
        first, t0, ticks0 = tracker.state().frames, time.monotonic(), loop.frames_shown
        provider.latency.clear()
        while time.monotonic() - t0 < seconds:
            loop.tick()
        elapsed = time.monotonic() - t0
        delivered = tracker.state().frames - first
        st = tracker.state()
    finally:
        tracker.stop()
        if view is not None:
            view.release()
    return {
        "mode": mode,
        "source": f"synthetic depth {width}x{height} at {fps} fps",
        "seconds": round(elapsed, 2),
        "frames_delivered": delivered,
        "share_of_source": delivered / (elapsed * fps),
        "tracker_ms": st.latency_ms,
        "frame_loop_fps": (loop.frames_shown - ticks0) / elapsed,
        "drawn": view is not None,
        "arrival_to_solver": _stats(provider.latency) if provider.latency else None,
    }


def run_benchmark(sizes=((640, 480), (1280, 720)), repeat: int = 60, beside_seconds: float = 10.0) -> dict:
    """Every measurement, as a dict (what `waterrock bench tracker` prints and saves)."""
    cv2.setNumThreads(1)
    result = {
        "machine": {
            "python": platform.python_version(),
            "opencv": cv2.__version__,
            "numpy": np.__version__,
            "cpu": platform.processor() or platform.machine(),
            "cv2_threads": cv2.getNumThreads(),
        },
        "goal_ms_640x480": GOAL_MS,
        "sizes": {},
    }
    result["latency"] = {}
    for w, h in sizes:
        result["sizes"][f"{w}x{h}"] = {"depth": bench_depth(w, h, repeat), "color": bench_color(w, h, repeat)}
        result["latency"][f"{w}x{h}"] = bench_latency(w, h, repeat)
    if beside_seconds > 0:  # the peer in the same run: the same tracker on a thread of the frame loop's process
        result["beside_frame_loop"] = {m: bench_beside_frame_loop(m, beside_seconds) for m in ("process", "thread")}
    lat = result["latency"].get("640x480") or bench_latency(640, 480, repeat)
    result["latency_640x480_depth"] = lat
    d = result["sizes"].get("640x480", {}).get("depth")
    if d:
        result["meets_goal"] = d["pipeline"]["median_ms"] <= GOAL_MS
    ratios = [kinds["color"]["ratio_to_baseline"] for kinds in result["sizes"].values()]
    if ratios:
        result["color_meets_goal"] = max(ratios) <= COLOR_GOAL_RATIO
    return result


def table(result: dict) -> str:
    rows = [f"{'size':>10} {'kind':>6} {'what':>34} {'median ms':>10} {'p95 ms':>8}"]
    for size, kinds in result["sizes"].items():
        for kind, r in kinds.items():
            for what, st in r.items():
                if isinstance(st, dict):
                    rows.append(
                        f"{size:>10} {kind:>6} {what:>34} {st['median_ms']:10.2f} {st['p95_ms']:8.2f}"
                    )
    latency = result.get("latency") or {"640x480": result.get("latency_640x480_depth")}
    latency = {size: lat for size, lat in latency.items() if lat}
    for size, lat in latency.items():
        for what in ("frame_to_latest", "latest_call"):
            st = lat[what]
            rows.append(f"{size:>10} {'runner':>6} {what:>34} {st['median_ms']:10.3f} {st['p95_ms']:8.3f}")
    beside = result.get("beside_frame_loop") or {}
    if beside:
        rows.append(f"beside the default scene's frame loop ({next(iter(beside.values()))['source']}):")
        rows.append(f"{'tracker':>10} {'share of frames':>16} {'tracker ms':>11} {'loop fps':>9} "
                    f"{'arrival to solver ms (median, p95)':>36}")
        for mode, r in beside.items():
            a = r["arrival_to_solver"] or {"median_ms": float("nan"), "p95_ms": float("nan")}
            rows.append(f"{mode:>10} {r['share_of_source']:16.0%} {r['tracker_ms']:11.2f} {r['frame_loop_fps']:9.1f} "
                        f"{a['median_ms']:22.1f}, {a['p95_ms']:.1f}")
    for size, kinds in result["sizes"].items():
        c = kinds["color"]
        rows.append(f"{size:>10} colour pipeline / plain MOG2 + connected components: {c['ratio_to_baseline']:.2f}x "
                    f"(goal <= {COLOR_GOAL_RATIO}x), {c['obstacles']} obstacles, {c['people_in_view']} people in view")
    if "meets_goal" in result:
        rows.append(
            f"goal: depth pipeline <= {GOAL_MS} ms per 640x480 frame on one core: "
            f"{'met' if result['meets_goal'] else 'NOT met'}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["640x480", "1280x720"], help="WxH frame sizes")
    ap.add_argument("--repeat", type=int, default=60, help="frames timed per measurement")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--beside-seconds", type=float, default=10.0,
                    help="seconds of the tracker beside the frame loop, process and thread (0: skip)")
    args = ap.parse_args(argv)
    sizes = [tuple(int(x) for x in s.lower().split("x")) for s in args.sizes]
    result = run_benchmark(sizes, args.repeat, args.beside_seconds)
    return report(result, table, args.json, indent=None)


if __name__ == "__main__":
    main()
