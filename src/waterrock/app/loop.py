"""The frame loop: obstacles -> solver -> snapshot -> renderer -> present, for window and headless.

The simulation runs at the scene's fixed ``solver.frame_rate``, decoupled from the display by an
accumulator (Fiedler, "Fix your timestep!", 2004): each displayed frame steps as many whole
simulation frames as real time has made due, at most ``max_catchup``; what is due beyond that is
dropped. A machine too slow for the scene therefore sees the water run slower, never stutter
through a burst of catch-up frames or blow up on one long step; its visitors grow and shrink in
the water's time, not the clock's (``girth.py``).

Every simulation frame is handed to the view (``view.update``), so trails sample the water at
the simulation's rate whatever the display's: the lines look the same on a 30 Hz projector and
a 144 Hz monitor. The picture itself is drawn once per displayed frame.

Stages are timed (obstacles, solve, snapshot, render, present) with rolling averages that the
debug overlay and the headless per-second report show.
"""

from __future__ import annotations

import collections
import faulthandler
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from waterrock.app import systemd
from waterrock.app.girth import GirthInWaterTime
from waterrock.app.logs import fault_stream
from waterrock.snapshots import ObstacleSnapshot, ParticleSnapshot

log = logging.getLogger(__name__)

STAGES = ("obstacles", "solve", "snapshot", "render", "present")
MAX_ELAPSED = 0.25  # s: a longer gap between displayed frames (a stall, a debugger) counts as this
STOP_GRACE = 1.5  # s after SIGTERM/SIGINT before the `waterrock` command exits, done or not
FAULT_LATER = 0.4  # s after STOP_GRACE: the exit of a process whose interpreter lock is held (_exit_at)
_stop_deadline: list[float | None] = [None]  # set by the command (set_stop_deadline); None in a library


def set_stop_deadline(seconds: float | None) -> None:
    """After SIGTERM or SIGINT, end the process ``seconds`` later whatever it is still doing (a
    frame of minutes, a camera that will not close): the command's promise to systemd. A program
    that runs the loop as a library leaves it None, and the loop only stops."""
    _stop_deadline[0] = seconds


def _exit_at(deadline: float) -> None:
    """End the process ``deadline`` s from now, every thread's stack written to the log first (what
    was stuck), with status 1. A thread of ours does it with the interpreter lock, every other
    thread stopped where its stack can be read; where a call in C holds the lock (a kernel of
    minutes), faulthandler's own thread, which needs none, does it FAULT_LATER s after. It alone
    read the stacks of a main thread running Python (Taichi compiling a kernel) as they changed,
    and the process died of SIGSEGV (seen once in CI)."""

    def now():
        stream = fault_stream()
        stream.write(f"Timeout: still running {deadline:.1f} s after the signal; every thread's stack:\n")
        faulthandler.dump_traceback(file=stream, all_threads=True)
        stream.flush()
        os._exit(1)

    timer = threading.Timer(deadline, now)
    timer.daemon = True  # a process that has stopped in time exits without waiting for it
    timer.start()
    faulthandler.dump_traceback_later(deadline + FAULT_LATER, exit=True, file=fault_stream())


class View(Protocol):
    """Where the frames go: a window, an offscreen target, or nothing (stats only)."""

    def update(self, snapshot: ParticleSnapshot) -> None: ...  # one simulation frame's particles

    def render(self) -> None: ...  # draw the picture

    def present(self) -> None: ...  # show it (swap buffers), or nothing offscreen

    def clear_trails(self) -> None: ...  # after a reset: no line joins the old water to the new


class ObstacleProvider(Protocol):
    def latest(self) -> ObstacleSnapshot: ...


class StageTimes:
    """Rolling average of each stage's milliseconds over the last ``window`` displayed frames."""

    def __init__(self, window: int = 60):
        self._window = window
        self._samples = {name: collections.deque(maxlen=window) for name in STAGES}
        self._current = dict.fromkeys(STAGES, 0.0)

    def add(self, stage: str, seconds: float) -> None:
        if stage not in self._current:  # a stage only some runs have (portals): from its first frame
            self._samples[stage] = collections.deque(maxlen=self._window)
            self._current[stage] = 0.0
        self._current[stage] += seconds

    def commit(self) -> None:
        """End of a displayed frame: its per-stage sums become one sample each."""
        for name, total in self._current.items():
            self._samples[name].append(1e3 * total)
            self._current[name] = 0.0

    def ms(self) -> dict[str, float]:
        return {name: (sum(s) / len(s) if s else 0.0) for name, s in self._samples.items()}

    def line(self) -> str:
        """The stages for a log line: ``sim 4.1 render 9.0 ...``."""
        return " ".join(f"{k} {v:.1f}" for k, v in self.ms().items())

    def rows(self) -> list[str]:
        """The stages for the overlay, one a row."""
        return [f"  {k:<9} {v:7.2f} ms" for k, v in self.ms().items()]


class _Timed:
    __slots__ = ("times", "stage", "t0")

    def __init__(self, times: StageTimes, stage: str):
        self.times, self.stage = times, stage

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.times.add(self.stage, time.perf_counter() - self.t0)


class Obstacles:
    """All the obstacle providers of a run (tracker, OSC, mouse, scripted) as one snapshot.

    A provider that raises gives no obstacles this frame; the failure is logged with its cause
    (once per distinct message every ``log_interval`` seconds), and the water runs on.
    """

    def __init__(self, providers: list | None = None, log_interval: float = 5.0):
        self.providers = list(providers or [])
        self._logged: dict[str, float] = {}
        self._log_interval = log_interval
        self.errors = 0

    def add(self, provider) -> None:
        self.providers.append(provider)

    def replace(self, old, new) -> None:
        """Put ``new`` where ``old`` was (a tracker started again)."""
        self.providers = [new if p is old else p for p in self.providers]

    def _get(self, p) -> ObstacleSnapshot:
        if hasattr(p, "latest"):
            return p.latest()
        if hasattr(p, "snapshot"):
            return p.snapshot()
        return p()

    def latest(self) -> ObstacleSnapshot:
        parts = []
        for p in self.providers:
            try:
                parts.append(self._get(p))
            except Exception as err:  # noqa: BLE001 - a broken input must not stop the water
                self.errors += 1
                key = f"{type(p).__name__}: {type(err).__name__}: {err}"
                now = time.monotonic()
                if now - self._logged.get(key, -math.inf) > self._log_interval:
                    self._logged[key] = now
                    log.error(
                        "obstacle source %s failed; its obstacles are left out",
                        type(p).__name__,
                        exc_info=err,
                    )
        return ObstacleSnapshot.concat(parts)


class SteppedTracker:
    """A recorded or synthetic frame source run through the tracking pipeline in step with the
    simulation's clock instead of a thread: deterministic, for offline renders and tests."""

    def __init__(self, source, settings, sim_time: Callable[[], float]):
        from waterrock.tracking.pipeline import pipeline_for

        self._pipeline_for = pipeline_for
        self.source, self.settings, self.sim_time = source, settings, sim_time
        self._frames = iter(source)
        self._next = next(self._frames, None)
        self._pipeline = None
        self._snap = ObstacleSnapshot.empty()

    def latest(self) -> ObstacleSnapshot:
        t = self.sim_time()
        while self._next is not None and self._next.timestamp <= t:
            frame = self._next
            if self._pipeline is None:
                self._pipeline = self._pipeline_for(self.settings, frame, self.source.calibration)
            self._snap = self._pipeline.process(frame)
            self._next = next(self._frames, None)
        return self._snap


class Loop:
    """What every frame loop shares: the run until stopped (signals, systemd's watchdog, a
    once-a-second callback), pause and reset requests, stage times and the displayed rate. A
    subclass says what one displayed frame is (``tick``) and how to wait for the next."""

    def __init__(self, view: View | None = None, *, clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep, stats_window: int = 60):
        self.view = view
        self.clock, self.sleep = clock, sleep
        self.times = StageTimes(stats_window)
        self.paused = False
        self._stop = threading.Event()
        self._reset_requested = False
        self.frames_shown = 0
        self.error: BaseException | None = None
        self._fps_frames: collections.deque = collections.deque(maxlen=stats_window + 1)

    # --- control -------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def toggle_pause(self) -> None:
        self.paused = not self.paused
        log.info("paused" if self.paused else "resumed")

    def request_reset(self) -> None:
        self._reset_requested = True

    def tick(self) -> int:
        """One displayed frame; returns the simulation frames it brought."""
        raise NotImplementedError

    def wait_for_next(self) -> None:
        """Called after a displayed frame that brought no simulation frame: wait a little."""

    def each_second(self) -> None:
        """The loop's own once-a-second work, before the caller's ``every_second``."""

    def shown(self) -> None:
        """The end of a displayed frame: its stage times and the displayed rate."""
        self.times.commit()
        self.frames_shown += 1
        self._fps_frames.append(self.clock())

    def fps(self) -> float:
        q = self._fps_frames
        if len(q) < 2 or q[-1] <= q[0]:
            return 0.0
        return (len(q) - 1) / (q[-1] - q[0])

    # --- the loop ------------------------------------------------------------------------------

    def run(
        self,
        seconds: float | None = None,
        poll: Callable[[], None] | None = None,
        every_second: Callable[[Loop], None] | None = None,
        handle_signals: bool = True,
    ) -> int:
        """Run until stopped (``stop()``, SIGINT, SIGTERM) or ``seconds`` after the first frame
        was shown (kernel compilation is not counted). Returns 0, or 1 after a crash, which is
        logged with its cause. ``poll`` runs before each frame (window events)."""
        previous = self._install_signals() if handle_signals else {}
        start = last_report = None
        log.info("frame loop started")
        try:
            while not self._stop.is_set():
                if poll is not None:
                    poll()
                    if self._stop.is_set():
                        break
                stepped = self.tick()
                now = self.clock()
                if start is None:
                    start = last_report = now
                    log.info("first frame shown; running")
                    systemd.notify("READY=1\nSTATUS=running")
                if seconds is not None and now - start >= seconds:
                    break
                if now - last_report >= 1.0:
                    last_report = now
                    systemd.notify("WATCHDOG=1")  # from the loop itself: a hung loop stops saying it
                    self.each_second()
                    if every_second is not None:
                        every_second(self)
                if not stepped:
                    self.wait_for_next()
        except Exception as err:  # noqa: BLE001 - logged with its cause; the caller releases resources
            self.error = err
            log.critical("the frame loop stopped: %s: %s", type(err).__name__, err, exc_info=err)
            return 1
        finally:
            systemd.notify("STOPPING=1")
            self._restore_signals(previous)
        return 0

    def _install_signals(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}

        def handler(signum, _frame):
            deadline = _stop_deadline[0]
            log.warning("received %s: stopping%s", signal.Signals(signum).name,
                        f" (the process ends within {deadline:.1f} s, done or not)" if deadline else "")
            self.stop()
            if deadline:
                _exit_at(deadline)

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
        return previous

    @staticmethod
    def _restore_signals(previous: dict) -> None:
        for sig, h in previous.items():
            signal.signal(sig, h)


class FrameLoop(Loop):
    """Steps ``solver`` at its scene's frame rate and hands each frame to ``view`` (and to
    ``publisher``, a simulation node's render nodes: net/nodes.py).

    ``realtime=False`` steps exactly one simulation frame per displayed frame, whatever the
    clock says (offline renders, tests). ``clock`` is injectable for tests of the accumulator.
    """

    def __init__(
        self,
        solver,
        obstacles: ObstacleProvider | None = None,
        view: View | None = None,
        *,
        max_catchup: int = 2,
        realtime: bool = True,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
        stats_window: int = 60,
        portals=None,
        publisher=None,
        governor=None,
        console=None,
    ):
        if max_catchup < 1:
            raise ValueError("max_catchup must be at least 1")
        super().__init__(view, clock=clock, sleep=sleep, stats_window=stats_window)
        self.solver = solver
        self.obstacles = obstacles
        self.portals = portals  # net.portal.PortalLinks: water to and from other works, once a frame
        self.publisher = publisher  # net.nodes.SnapshotPublisher: every simulation frame to the render nodes
        self.governor = governor  # app.governor.Governor: the display's rate held, once a second
        self.console = list(console or [])  # app/console.py's services: on_frame(loop), on_second(loop)
        self._second: tuple | None = None  # (when, frames shown, dropped) at the last each_second
        self.sim_dt = 1.0 / float(solver.scene.solver.frame_rate)
        self.max_catchup = int(max_catchup)
        self.realtime = realtime
        self.girth = GirthInWaterTime()  # visitors' radii in the water's time
        self._acc = 0.0
        self._last: float | None = None
        self.sim_frames = 0
        self.dropped = 0  # simulation frames that were due but dropped (catch-up bound)
        self.obstacle_count = 0
        self.particles = 0
        self.last_stats: dict = {}

    def _reset(self) -> None:
        log.info("reset: the water starts again")
        self.solver.reset()
        self._acc = 0.0
        if self.view is not None:
            self.view.clear_trails()
        if self.publisher is not None:
            self.publisher.reset()
        self._reset_requested = False

    def replace_solver(self, solver) -> None:
        """Step ``solver`` from the next frame on: the scene's physics was edited while running
        (app/live.py). Its frame rate is the loop's from now, and, as after a reset, no line joins
        the old water to the new."""
        self.solver = solver
        self.sim_dt = 1.0 / float(solver.scene.solver.frame_rate)
        self._acc = 0.0
        self.last_stats = {}
        if self.view is not None:
            self.view.clear_trails()
        if self.publisher is not None:
            self.publisher.reset()

    # --- one displayed frame -------------------------------------------------------------------

    def due_frames(self, now: float) -> int:
        """Whole simulation frames made due since the last call, bounded by ``max_catchup``."""
        if not self.realtime:
            self._last = now
            return 0 if self.paused else 1
        if self._last is None:
            self._last = now
            return 0 if self.paused else 1  # the first frame: something to show at once
        elapsed = min(max(now - self._last, 0.0), MAX_ELAPSED)
        self._last = now
        if self.paused:
            return 0
        self._acc += elapsed
        n = int(self._acc / self.sim_dt + 1e-9)
        self._acc -= n * self.sim_dt
        if n > self.max_catchup:
            self.dropped += n - self.max_catchup
            n = self.max_catchup
        return n

    def step_simulation(self) -> None:
        with _Timed(self.times, "obstacles"):
            if self.obstacles is not None:
                snap = self.obstacles.latest()
                self.obstacle_count = len(snap)
                if self.realtime:  # offline, the visitors are stepped in the water's time already
                    snap = self.girth(snap, self.sim_dt)
                self.solver.set_obstacles(snap)
        with _Timed(self.times, "solve"):
            self.last_stats = self.solver.step(self.sim_dt)
        if self.portals is not None:
            with _Timed(self.times, "portals"):
                self.portals.exchange(self.solver)
        self.sim_frames += 1
        if self.view is not None or self.publisher is not None:
            with _Timed(self.times, "snapshot"):
                snapshot = self.solver.snapshot()
                self.particles = len(snapshot)
            if self.publisher is not None:
                with _Timed(self.times, "publish"):
                    self.publisher.publish(snapshot)
            if self.view is not None:
                with _Timed(self.times, "render"):
                    self.view.update(snapshot)

    def tick(self) -> int:
        """One displayed frame; returns the simulation frames it stepped."""
        for service in self.console:  # what the operator asked for since the last frame, on this thread
            service.on_frame(self)
        if self._reset_requested:
            self._reset()
        n = self.due_frames(self.clock())
        for _ in range(n):
            self.step_simulation()
        if self.view is None and self.publisher is None and n:
            self.particles = int(self.last_stats.get("active", 0)) or self.solver.n_active()
        if self.view is not None:
            with _Timed(self.times, "render"):
                self.view.render()
            with _Timed(self.times, "present"):
                self.view.present()
        self.shown()
        if self._second is None:  # the governor's seconds count from the first frame shown
            self._second = (self.clock(), self.frames_shown, self.dropped)
        return n

    def wait_for_next(self) -> None:
        """Sleep until the next simulation frame is due, so an idle loop does not spin."""
        if not self.realtime or self._last is None:
            return
        rest = (1.0 / 30.0) if self.paused else self.sim_dt - self._acc - (self.clock() - self._last)
        if rest > 0.0005:
            self.sleep(min(rest, 0.1))

    def each_second(self) -> None:
        """The governor's second: frames shown and dropped since the last (fps() averages over
        60 frames, eight seconds at 7 fps: too slow to steer by)."""
        now, last = self.clock(), self._second
        self._second = (now, self.frames_shown, self.dropped)
        for service in self.console:
            service.on_second(self)
        if last is None:
            return
        shown, dropped, elapsed = self.frames_shown - last[1], self.dropped - last[2], now - last[0]
        if self.governor is not None and not self.paused and elapsed > 0:
            self.governor.update(shown / elapsed, dropped * self.sim_dt / elapsed, sum(self.times.ms().values()))

    # --- what the overlay and the headless report show ------------------------------------------

    def report(self) -> str:
        return (
            f"t={self.solver.time:7.2f}s fps {self.fps():5.1f} sim {self.sim_frames} frames "
            f"(dropped {self.dropped}) | ms {self.times.line()} | particles {self.particles} "
            f"| obstacles {self.obstacle_count}{' | PAUSED' if self.paused else ''}"
        )

    def overlay_lines(self) -> list[str]:
        sim_rate = 1.0 / self.sim_dt
        lines = [
            f"fps {self.fps():5.1f}   sim {sim_rate:.0f} Hz   t {self.solver.time:7.2f} s"
            + ("   PAUSED" if self.paused else ""),
            f"particles {self.particles}   obstacles {self.obstacle_count}   dropped {self.dropped}",
        ]
        lines += self.times.rows()
        st = self.last_stats
        if st:
            lines.append(f"substeps {st.get('substeps', 0)}   max speed {st.get('max_speed', 0.0):.2f} m/s")
        if self.portals is not None:
            lines += self.portals.describe()
        if self.publisher is not None:
            lines += self.publisher.describe()
        if self.governor is not None:
            lines.append(self.governor.describe())
        return lines


def clear_snapshot(frame: int = 0, t: float = 0.0) -> ParticleSnapshot:
    """An empty snapshot: given to the renderer, every trail drops to nothing."""
    return ParticleSnapshot(
        frame=frame,
        time=t,
        positions=np.zeros((0, 3), np.float32),
        velocities=np.zeros((0, 3), np.float32),
        ids=np.zeros((0,), np.int32),
        recycled=np.zeros((0,), bool),
    )
