"""A render node: ``waterrock project --from tcp://host:port``.

It runs no solver: it takes the frames a simulation node publishes (``--publish``, net/nodes.py)
and draws them on its own outputs, with its own warps and calibration, from the same scene file.
Every frame it receives moves the trails on, in order, as the simulation node's own view does,
so its picture of frame N is the simulation node's picture of frame N. Through a gap (the
network, a restart of the simulation node) it keeps its last picture, and after a second without
frames its lines fade away; a new run or reset of the simulation node starts its trails afresh.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from waterrock.app.loop import Loop, _Timed
from waterrock.net.nodes import FrameReceiver, snapshot_of
from waterrock.scene import Scene

log = logging.getLogger(__name__)

FADE_AFTER_S = 1.0  # a gap this long before the last picture starts to fade
FADE_S = 2.0  # and this long to fade away


class RenderNodeLoop(Loop):
    """The frame loop of a render node: frames from the simulation node instead of a solver."""

    def __init__(self, receiver: FrameReceiver, view, **kw):
        super().__init__(view, **kw)
        self.receiver = receiver
        self.sim_frames = 0  # frames taken and drawn
        self.frame: int | None = None  # the last one's number
        self.particles = 0
        self.dropped = 0  # what a simulation node's loop calls dropped; here, receiver.missed
        self.fade = 1.0

    def faded(self) -> float:
        """How much of the lines' light the picture keeps: 1 while frames come, then down to 0
        over ``FADE_S`` after ``FADE_AFTER_S`` without one."""
        quiet = self.receiver.since_last()
        if quiet is None:
            return 1.0
        return float(np.clip(1.0 - (quiet - FADE_AFTER_S) / FADE_S, 0.0, 1.0))

    def tick(self) -> int:
        view = self.view
        if self._reset_requested:
            view.clear_trails()
            self._reset_requested = False
        with _Timed(self.times, "receive"):
            arrivals = self.receiver.take()
        if self.paused:
            arrivals = []  # a paused node holds its picture; the frames meanwhile pass it by
        for frame, fresh in arrivals:
            if fresh:
                view.clear_trails()
            with _Timed(self.times, "render"):
                view.update(snapshot_of(frame))
            self.frame, self.particles = frame.frame, len(frame.ids)
            self.sim_frames += 1
        self.dropped = self.receiver.missed
        fade = self.faded()
        if fade != self.fade:
            self.fade = fade
            view.renderer.lines.dim(fade)
        with _Timed(self.times, "render"):
            view.render()
        with _Timed(self.times, "present"):
            view.present()
        self.shown()
        return len(arrivals)

    def wait_for_next(self) -> None:
        self.receiver.wait(1.0 / 60.0)  # back at once when a frame comes; else the fade moves on

    def report(self) -> str:
        frame = "-" if self.frame is None else self.frame
        return (f"frame {frame} fps {self.fps():5.1f} drawn {self.sim_frames} | ms {self.times.line()} | particles "
                f"{self.particles}" + (f" | fading {self.fade:.2f}" if self.fade < 1.0 else "")
                + ("".join(f" | {line.strip()}" for line in self.receiver.describe())))

    def overlay_lines(self) -> list[str]:
        lines = [f"render node   fps {self.fps():5.1f}   frame {self.frame}" + ("   PAUSED" if self.paused else ""),
                 f"particles {self.particles}   lines {self.fade:.0%}"]
        lines += self.times.rows()
        return lines + self.receiver.describe()


def run_render_node(scene: Scene, source: str, *, headless: bool = False, monitors: list[int] | None = None,
                    seconds: float | None = None, screenshot: str | Path | None = None,
                    capture: dict[int, Path] | None = None, overlay: bool = False, print_stats=print) -> int:
    """Draw the frames published at ``source`` until stopped, on the scene's outputs, or offscreen
    (``headless``: stats every second, ``capture`` saves the picture of given frame numbers)."""
    receiver = FrameReceiver(source, max_gap=scene.render.trails.length)
    log.info("render node: drawing the frames published at %s", receiver.endpoint)
    try:
        if headless:
            return _offscreen(scene, receiver, seconds, screenshot, capture, print_stats)
        from waterrock.app.projection import Outputs, ProjectionView, outputs_for

        projection = outputs_for(scene.projection, monitors)
        outputs = Outputs(projection)
        view = None
        try:
            view = ProjectionView(outputs, scene, projection, Path(screenshot) if screenshot else None)
            loop = RenderNodeLoop(receiver, view)
            view.loop = loop
            view.show_debug = view.show_help = overlay
            rc = loop.run(seconds=seconds, poll=view.poll, every_second=_every(10))
            if rc == 0 and screenshot is not None and seconds is not None:
                view.screenshot_now(Path(screenshot))
            return rc
        finally:
            if view is not None:
                view.release()
            outputs.close()
    finally:
        for line in receiver.describe():
            log.info("at the end: %s", line.strip())
        receiver.close()


def _every(seconds: int):
    """The windowed node's once-a-second callback: its report in the log every ``seconds``."""
    calls = [0]

    def report(loop: RenderNodeLoop) -> None:
        calls[0] += 1
        if calls[0] % seconds == 0:
            log.info("%s", loop.report())

    return report


def _offscreen(scene, receiver, seconds, screenshot, capture, print_stats) -> int:
    from waterrock.app.session import OffscreenView, save_png

    view = OffscreenView(scene, capture=capture)
    try:
        loop = RenderNodeLoop(receiver, view)
        rc = loop.run(seconds=seconds, every_second=lambda lp: print_stats(lp.report()))
        print_stats(loop.report())
        if screenshot is not None and rc == 0 and not capture:
            print_stats(f"screenshot: {save_png(view.read_pixels(), screenshot)}")
        return rc
    finally:
        view.release()
