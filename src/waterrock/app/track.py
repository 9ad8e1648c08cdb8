"""`waterrock track SOURCE`: the tracker alone on a camera, a video or a recording.

Each frame goes through the scene's tracking pipeline in this process, as fast as the source
gives it (a file: as fast as it can be read; a camera: at its rate). The picture drawn is the
frame with the visitors' pixels tinted, each obstacle's footprint and radius, its id and its
velocity (an arrow to where it would be in half a second); ``--out`` writes it as a video or a
folder of PNGs, ``--show`` in a window. The summary at the end is what an operator tunes by:
obstacles a frame, ids seen, published speeds, and ms a frame.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from waterrock.app.overlay import tracker_view
from waterrock.snapshots import ObstacleSnapshot
from waterrock.tracking.calibrate import DepthCalibration, FloorHomography
from waterrock.tracking.frame import CorruptFrame, Frame
from waterrock.tracking.pipeline import Pipeline, pipeline_for
from waterrock.tracking.settings import TrackingSettings
from waterrock.tracking.sources import open_source

log = logging.getLogger(__name__)

ARROW_S = 0.5  # the velocity arrow reaches where the obstacle would be this many seconds on


@dataclass
class TrackSummary:
    """What a tracking run measured."""

    source: str
    frames: int = 0
    skipped: int = 0
    learning: int = 0  # frames spent learning the background (no obstacles yet)
    obstacles: list[int] = field(default_factory=list)  # a frame, after learning
    ids: set[int] = field(default_factory=set)
    speeds: list[float] = field(default_factory=list)  # m/s, every published obstacle
    ms: list[float] = field(default_factory=list)  # pipeline ms a frame
    seconds: float = 0.0  # of the source's own clock

    def as_dict(self) -> dict:
        def pct(xs, q):
            return float(np.percentile(xs, q)) if len(xs) else 0.0

        return {
            "source": self.source,
            "frames": self.frames,
            "skipped": self.skipped,
            "learning_frames": self.learning,
            "source_seconds": round(self.seconds, 3),
            "obstacles_per_frame_mean": float(np.mean(self.obstacles)) if self.obstacles else 0.0,
            "obstacles_per_frame_max": max(self.obstacles, default=0),
            "ids": len(self.ids),
            "speed_median_m_s": pct(self.speeds, 50),
            "speed_p95_m_s": pct(self.speeds, 95),
            "speed_max_m_s": max(self.speeds, default=0.0),
            "ms_median": pct(self.ms, 50),
            "ms_p95": pct(self.ms, 95),
        }

    def text(self) -> str:
        d = self.as_dict()
        return "\n".join([
            f"source           {d['source']}: {d['frames']} frames ({d['source_seconds']:.1f} s of its clock), "
            f"{d['skipped']} skipped, {d['learning_frames']} learning the background",
            f"obstacles        {d['obstacles_per_frame_mean']:.2f} a frame (max {d['obstacles_per_frame_max']}), "
            f"{d['ids']} ids",
            f"speeds           median {d['speed_median_m_s']:.2f} m/s, 95th percentile {d['speed_p95_m_s']:.2f}, "
            f"max {d['speed_max_m_s']:.2f}",
            f"time             {d['ms_median']:.2f} ms a frame (median), {d['ms_p95']:.2f} (95th percentile)",
        ])


def _to_pixels(cal, points: np.ndarray) -> np.ndarray:
    if isinstance(cal, DepthCalibration):
        return cal.world_to_pixel(points)[0]
    if isinstance(cal, FloorHomography):
        return cal.world_to_pixel(points)
    return np.zeros((len(points), 2))


def annotate(frame: Frame, foreground: np.ndarray | None, snap: ObstacleSnapshot, cal) -> np.ndarray:
    """The frame (BGR) as the tracker sees it: visitors' pixels tinted, obstacles drawn."""
    out = np.ascontiguousarray(np.clip(tracker_view(frame, foreground), 0, 255).astype(np.uint8)[:, :, ::-1])
    if not len(snap) or cal is None:
        return out
    foot = snap.a.astype(np.float64)
    side = foot + np.column_stack([snap.radius, np.zeros((len(snap), 2))])
    ahead = foot + ARROW_S * snap.velocity
    p, q, r, top = (_to_pixels(cal, x) for x in (foot, side, ahead, snap.b.astype(np.float64)))
    for k in range(len(snap)):
        if not np.all(np.isfinite([*p[k], *q[k], *r[k], *top[k]])):
            continue
        c = tuple(int(round(v)) for v in p[k])
        cv2.line(out, c, tuple(int(round(v)) for v in top[k]), (80, 255, 80), 1, cv2.LINE_AA)  # the capsule's axis
        radius = max(2, int(round(float(np.hypot(*(q[k] - p[k]))))))
        cv2.circle(out, c, radius, (80, 255, 80), 2, cv2.LINE_AA)
        cv2.arrowedLine(out, c, tuple(int(round(v)) for v in r[k]), (255, 255, 0), 2, cv2.LINE_AA, tipLength=0.25)
        speed = float(np.linalg.norm(snap.velocity[k]))
        cv2.putText(out, f"{snap.ids[k]} {speed:.1f}m/s", (c[0] + radius + 2, c[1]), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def track(source_spec: str, settings: TrackingSettings, *, out: Path | None = None, show: bool = False,
          seconds: float | None = None, frames: int | None = None) -> TrackSummary:
    """Run the tracker on ``source_spec`` until it ends, ``seconds`` of its clock or ``frames``
    pass, or q / Esc in the window."""
    from waterrock.render.command import FrameSink

    source = open_source(source_spec, loop=False, realtime=False)
    summary = TrackSummary(source.describe())
    pipeline: Pipeline | None = None
    sink = None
    t0: float | None = None
    try:
        for frame in source:
            if frames is not None and summary.frames >= frames:
                break
            if t0 is None:
                t0 = frame.timestamp
            if seconds is not None and frame.timestamp - t0 > seconds:
                break
            summary.frames += 1
            summary.seconds = frame.timestamp - t0
            start = time.perf_counter()
            try:
                if pipeline is None:
                    pipeline = pipeline_for(settings, frame, source.calibration)
                snap = pipeline.process(frame)
            except CorruptFrame as err:
                summary.skipped += 1
                log.warning("skipped frame %d: %s", frame.index, err)
                continue
            summary.ms.append(1000.0 * (time.perf_counter() - start))
            if not getattr(pipeline, "ready", pipeline.foreground() is not None):
                summary.learning += 1
            else:
                summary.obstacles.append(len(snap))
                summary.ids.update(int(i) for i in snap.ids)
                summary.speeds.extend(np.linalg.norm(snap.velocity, axis=1).tolist())
            if out is None and not show:
                continue
            picture = annotate(frame, pipeline.foreground(), snap, getattr(pipeline, "calibration", None))
            if out is not None:
                if sink is None:
                    sink = FrameSink(out, (picture.shape[1], picture.shape[0]), _rate(source))
                sink.write(picture[:, :, ::-1])
            if show:
                cv2.imshow("waterrock track (q: quit)", picture)
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()
        if sink is not None:
            sink.close()
        if show:
            cv2.destroyAllWindows()
    return summary


def _rate(source) -> float:
    return float(getattr(source, "fps", None) or 30.0)
