"""What a run is made of: the scene's solver, its obstacle sources, and a view to draw into.

Shared by the window, the projectors, the headless fallback and ``waterrock render``, so they
differ only in where the picture goes.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path

from waterrock.app.console import close_console, open_console
from waterrock.app.loop import FrameLoop, Obstacles, SteppedTracker, clear_snapshot
from waterrock.scene import Scene
from waterrock.snapshots import ParticleSnapshot

log = logging.getLogger(__name__)


class Inputs:
    """The scene's visitors: the tracker on its thread (or stepped with the simulation), the OSC
    server if the scene asks for it, and any extra provider (the mouse). ``close()`` stops them.
    ``open_source`` opens the tracker's frames instead of the scene's source (the soak's, with
    faults in them)."""

    def __init__(self, scene: Scene, solver=None, stepped: bool = False, open_source=None):
        self.scene = scene
        self.obstacles = Obstacles()
        self.runner = None
        self.osc = None
        self.stepped = False
        s = scene.tracking
        if s.source != "none":
            ground = self._ground(s, solver)
            if stepped and s.source in ("synthetic", "depth_recording", "video"):
                self.obstacles.add(self._stepped(s, solver, ground))
                self.stepped = True
            else:
                self.runner = self._live(s, open_source, ground).start()
                self.obstacles.add(self.runner)
                log.info("tracker started: source %s, %s", s.source,
                         "in its own process" if s.process and open_source is None else "on a thread")
        if s.osc:
            from waterrock.tracking.osc import OscObstacleServer

            try:
                self.osc = OscObstacleServer(s).start()
                self.obstacles.add(self.osc)
            except OSError as err:
                log.error(
                    "cannot listen for OSC on %s:%d (%s): running without it", s.osc_host, s.osc_port, err
                )

    @staticmethod
    def _ground(s, solver):
        """What synthetic visitors stand on: the rock's top, read off the solver's distance volume
        once (0.5 s for the rock hill's on 2 cores)."""
        sdf = getattr(getattr(solver, "boundary", None), "rock_sdf", None)
        if s.source != "synthetic" or sdf is None:
            return None
        from waterrock.tracking.synthetic import Ground

        return Ground.from_sdf(sdf)

    @staticmethod
    def _live(s, open_source, ground=None):
        """The tracker in its own process (DESIGN.md), or on a thread when the scene says so or a
        caller hands in its own source (the soak's faulty one, whose counts it reads here)."""
        from waterrock.tracking.sources import source_from_settings

        opener = functools.partial(source_from_settings, s, ground)  # picklable: it crosses to the process
        if s.process and open_source is None:
            from waterrock.tracking.process import TrackerProcess

            return TrackerProcess(s, opener)
        from waterrock.tracking.runner import TrackerRunner

        return TrackerRunner(open_source or opener, s)

    @staticmethod
    def _stepped(s, solver, ground=None) -> SteppedTracker:
        from waterrock.tracking.sources import source_from_settings

        # an offline run must not wait for wall-clock time, nor loop a recording forever ahead
        source = source_from_settings(s.model_copy(update={"realtime": False}), ground)
        return SteppedTracker(source, s, lambda: solver.time)

    def tracker_state(self) -> str:
        if self.runner is None:
            text = "tracker: stepped with the simulation" if self.stepped else "tracker: none"
            return text + (", OSC on" if self.osc is not None else "")
        st = self.runner.state()
        text = f"tracker: {st.status} {st.source} {st.fps:.0f} fps, {st.obstacles} obstacles"
        restarts = getattr(self.runner, "restarts", 0)
        if restarts:
            text += f", process restarted {restarts}x"
        if st.last_error:
            text += f" (last error: {st.last_error})"
        return text

    @contextlib.contextmanager
    def camera_handed_over(self):
        """Stop the live tracker so that the camera is free (a nightly calibration check takes
        it), and start a new one afterwards, whatever happened meanwhile; the obstacles fade
        while it is away, as a stalled camera's do."""
        old = self.runner
        if old is not None:
            old.stop()
            log.info("tracker stopped: the camera is handed over")
        try:
            yield
        finally:
            if old is not None:
                self.runner = self._live(self.scene.tracking, None).start()
                self.obstacles.replace(old, self.runner)
                log.info("tracker started again: the camera is back")

    def tracker_picture(self):
        """The live tracker's last frame and foreground mask, or None (no camera, none yet)."""
        return None if self.runner is None else self.runner.latest_picture()

    def close(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        if self.osc is not None:
            self.osc.stop()


class OffscreenView:
    """The renderer drawing into an offscreen EGL target: the headless run's picture.
    ``capture`` maps simulation frame numbers to PNG paths: each of those frames is drawn and
    saved as it arrives (the first time; a reset's frames do not count again)."""

    def __init__(self, scene: Scene, size: tuple[int, int] | None = None, capture: dict[int, Path] | None = None):
        from waterrock.render.command import scene_rock
        from waterrock.render.renderer import Renderer
        from waterrock.render.target import OffscreenTarget

        self.size = tuple(int(v) for v in (size or scene.render.resolution))
        self.target = OffscreenTarget(self.size)
        try:
            self.renderer = Renderer(
                self.target.ctx, scene.render, self.size, scene_rock(scene), scene.fluid.max_particles
            )
        except Exception:
            self.target.release()
            raise
        self.capture = dict(capture or {})

    def update(self, snapshot: ParticleSnapshot) -> None:
        self.renderer.update(snapshot)
        path = self.capture.pop(int(snapshot.frame), None)
        if path is not None:
            self.render()
            print(f"frame {snapshot.frame}: {save_png(self.read_pixels(), path)}", flush=True)

    def render(self) -> None:
        self.renderer.render(self.target.framebuffer)

    def present(self) -> None:
        pass

    def clear_trails(self) -> None:
        self.renderer.update(clear_snapshot())

    def read_pixels(self):
        return self.renderer.read_pixels()

    def release(self) -> None:
        self.renderer.release()
        self.target.release()


def save_png(rgb, path: str | Path) -> Path:
    import cv2

    from waterrock import files

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, image = cv2.imencode(path.suffix or ".png", rgb[:, :, ::-1].copy())  # the format by the name, as imwrite
    if not ok:
        raise OSError(f"{path}: cannot encode an image of {rgb.shape} for it")
    return files.write_bytes(path, image.tobytes())  # a full disk leaves the last screenshot whole


class SharedKeys:
    """The hotkeys every on-screen view answers the same way (docs/operator.md), for a view with
    ``loop``, ``show_debug``, ``show_tracker``, ``show_help`` and ``_want_screenshot``."""

    def _shared_key(self, glfw, key: int) -> bool:
        """Q / Esc quit, space pause, R reset the water, D overlay, T tracker panel, H help,
        S screenshot; False for any other key."""
        if key in (glfw.KEY_ESCAPE, glfw.KEY_Q):
            self.loop.stop()
        elif key == glfw.KEY_SPACE:
            self.loop.toggle_pause()
        elif key == glfw.KEY_R:
            self.loop.request_reset()
        elif key == glfw.KEY_D:
            self.show_debug = not self.show_debug
        elif key == glfw.KEY_T:
            self.show_tracker = not self.show_tracker
        elif key == glfw.KEY_H:
            self.show_help = not self.show_help
        elif key == glfw.KEY_S:
            self._want_screenshot = True
        else:
            return False
        return True


def run_view(view, scene: Scene, arch: str | None, seconds: float | None, overlay: bool,
             visitor=None, watch=None, on_stop=None, publisher=None) -> int:
    """Drive an on-screen view (the window's InstallationView, the projectors' ProjectionView):
    the scene's solver and inputs, the frame loop until it stops, then ``on_stop(rc)`` while the
    inputs are still open (the screenshot, an edit left open). ``visitor`` is one more obstacle
    source (the mouse), ``watch(inputs)`` the loop's once-a-second callback, ``publisher`` the
    render nodes' (net/nodes.py; closed here). The view is the caller's to release."""
    from waterrock.solver.solver import Solver

    solver = Solver(scene, arch=arch)
    inputs = Inputs(scene, solver)
    portals = open_portals(scene)
    console: list = []
    try:
        if visitor is not None:
            inputs.obstacles.add(visitor)
        console[:] = open_console(scene, view, inputs)
        loop = FrameLoop(solver, inputs.obstacles, view, portals=portals, publisher=publisher, console=console)
        loop.governor = open_governor(scene, view.renderer, lambda: loop.solver)  # a live edit may swap the solver
        view.loop, view.inputs = loop, inputs
        view.show_debug = view.show_help = overlay
        rc = loop.run(seconds=seconds, poll=view.poll, every_second=watch(inputs) if watch is not None else None)
        if on_stop is not None:
            on_stop(rc)
        log.info("stopped after %d frames shown, %d simulated, %d dropped",
                 loop.frames_shown, loop.sim_frames, loop.dropped)
        return rc
    finally:
        close_console(console)
        inputs.close()
        close_portals(portals)
        close_publisher(publisher)


def open_governor(scene: Scene, renderer, solver):
    """The frame-rate governor of an on-screen view (app/governor.py), or None when the scene
    turns it off. Its levels set the renderer's scale and trails, and the emitters' rate of
    ``solver``: the solver, or a function that gives the running one (a live edit of the scene
    file restarts the water with a new solver: app/live.py)."""
    running = solver if callable(solver) else lambda: solver
    settings = scene.governor
    if not settings.enabled:
        return None
    from waterrock.app.governor import Governor

    def apply(level) -> None:
        length = renderer.settings.trails.length  # the scene's, or what OSC control set since
        renderer.set_quality(scale=level.scale, length=max(2, round(length * level.trails)), share=level.trails)
        running().sources.rate_scale = level.water

    target = settings.target(scene.solver.frame_rate)
    log.info("frame-rate governor on: holding %.0f fps (the scene's [governor])", target)
    return Governor(settings, target, apply)


def close_publisher(publisher) -> None:
    if publisher is not None:
        for line in publisher.describe():
            log.info("at the end: %s", line)
        publisher.close()


def open_portals(scene: Scene):
    """The scene's portals joined to their peers (net/portal.py), or None when it has none."""
    if not scene.portals:
        return None
    from waterrock.net.portal import PortalLinks

    return PortalLinks(scene)


def close_portals(portals) -> None:
    if portals is not None:
        for line in portals.describe():
            log.info("at the end: %s", line)
        portals.close()


def run_headless(
    scene: Scene,
    arch: str | None = None,
    seconds: float | None = None,
    screenshot: str | Path | None = None,
    draw: bool = True,
    print_stats=print,
    publisher=None,
    capture: dict[int, Path] | None = None,
) -> int:
    """The run without a window: per-second stats on stdout; the picture drawn offscreen when
    EGL works (so its cost shows in the stats and ``--screenshot`` has something to save);
    ``capture`` as OffscreenView's, ``publisher`` as run_view's."""
    from waterrock.solver.solver import Solver

    solver = Solver(scene, arch=arch)
    view = None
    if draw:
        try:
            view = OffscreenView(scene, capture=capture)
        except Exception as err:  # noqa: BLE001 - no EGL: the water still runs
            log.warning("no offscreen OpenGL (%s: %s): simulating without drawing", type(err).__name__, err)
    inputs = Inputs(scene, solver)
    portals = open_portals(scene)
    loop = FrameLoop(solver, inputs.obstacles, view, portals=portals, publisher=publisher,
                     console=open_console(scene, view, inputs))

    def report(lp: FrameLoop) -> None:
        extra = [*(portals.describe() if portals is not None else []),
                 *(publisher.describe() if publisher is not None else [])]
        print_stats(f"{lp.report()} | {inputs.tracker_state()}" + "".join(f" | {line}" for line in extra))

    try:
        rc = loop.run(seconds=seconds, every_second=report)
        report(loop)
        if screenshot is not None and rc == 0 and not capture:
            if view is None:
                log.error("no screenshot: nothing was drawn (no offscreen OpenGL)")
                rc = 1
            else:
                print_stats(f"screenshot: {save_png(view.read_pixels(), screenshot)}")
        return rc
    finally:
        close_console(loop.console)
        inputs.close()
        close_portals(portals)
        close_publisher(publisher)
        if view is not None:
            view.release()


def stepped_snapshots(scene: Scene, solver, fps: float, inputs: Inputs | None = None):
    """Step the solver once per output frame (1 / fps of simulated time each) and yield its
    snapshot: ``waterrock render``'s producer."""
    frame_dt = 1.0 / fps
    while True:
        if inputs is not None:
            solver.set_obstacles(inputs.obstacles.latest())
        solver.step(frame_dt)
        yield solver.snapshot()
