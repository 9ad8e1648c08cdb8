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

from waterrock import files
from waterrock.bench.stats import summarize
from waterrock.tracking.frame import Frame
from waterrock.tracking.pipeline import ColorPipeline, DepthPipeline
from waterrock.tracking.runner import TrackerRunner
from waterrock.tracking.segment import DepthBackground
from waterrock.tracking.settings import TrackingSettings
from waterrock.tracking.sources import FrameSource
from waterrock.tracking.synthetic import SyntheticScript, SyntheticSource, overhead_camera

GOAL_MS = 5.0  # per 640x480 frame, one core


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


def color_frames(width: int, height: int, n: int) -> list[Frame]:
    rng = np.random.default_rng(0)
    floor = cv2.GaussianBlur(rng.integers(120, 220, (height, width, 3), dtype=np.uint8), (0, 0), 2.0)
    s = width / 640
    walkers = [(0.25, 6.0), (0.5, -5.0), (0.8, 7.5)]
    out = []
    for i in range(n):
        img = floor.copy()
        for row, speed in walkers:
            x = int((width / 2 + speed * s * (i - n / 2)) % width)
            cv2.ellipse(img, (x, int(row * height)), (int(34 * s), int(24 * s)), 0, 0, 360, (30, 30, 35), -1)
        out.append(Frame(i / 30, color=img, index=i))
    return out


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


def bench_color(width: int, height: int, repeat: int) -> dict:
    frames = color_frames(width, height, repeat + 30)
    pipe = ColorPipeline(TrackingSettings(floor_width=4.0))
    for f in frames[:30]:
        pipe.process(f)
    frames = frames[30:]
    full = _time(pipe.process, frames)
    mog = cv2.createBackgroundSubtractorMOG2(300, 32.0, True)
    for f in frames[:5]:
        mog.apply(f.color)
    raw = _time(lambda f: mog.apply(f.color, learningRate=1 / 300), frames)
    cc = _time(
        lambda m: cv2.connectedComponentsWithStats(m, connectivity=8),
        [pipe.segmenter.segment(f.color) for f in frames],
    )
    return {
        "pipeline": _stats(full),
        "baseline_mog2_only": _stats(raw),
        "baseline_connected_components": _stats(cc),
        "obstacles": len(pipe.process(frames[-1])),
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


def run_benchmark(sizes=((640, 480), (1280, 720)), repeat: int = 60) -> dict:
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
    lat = result["latency"].get("640x480") or bench_latency(640, 480, repeat)
    result["latency_640x480_depth"] = lat
    d = result["sizes"].get("640x480", {}).get("depth")
    if d:
        result["meets_goal"] = d["pipeline"]["median_ms"] <= GOAL_MS
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
    latency = result.get("latency") or {"640x480": result["latency_640x480_depth"]}
    for size, lat in latency.items():
        for what in ("frame_to_latest", "latest_call"):
            st = lat[what]
            rows.append(f"{size:>10} {'runner':>6} {what:>34} {st['median_ms']:10.3f} {st['p95_ms']:8.3f}")
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
    args = ap.parse_args(argv)
    sizes = [tuple(int(x) for x in s.lower().split("x")) for s in args.sizes]
    result = run_benchmark(sizes, args.repeat)
    print(table(result))
    if args.json:
        files.write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
