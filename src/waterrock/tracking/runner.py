"""TrackerRunner: the tracker on its own thread, so a camera can stall without the water.

The worker thread reads frames, runs the pipeline and publishes the newest snapshot by one
reference assignment; :meth:`TrackerRunner.latest` only reads that reference, so it never
waits on the camera. When frames stop coming, ``latest()`` fades the last obstacles out
(weight 1 -> 0 over ``fade_time``, then none): a visitor does not stay frozen in the water
while the sensor is gone. Frames have stopped when none has come for ``stall_timeout``, or,
for a source slower than that, for LATE_AFTER of its own long intervals (see stall_after).
A source that raises or ends is reopened with exponential backoff; one that hangs inside a
read is abandoned after ``stall_reconnect`` and a fresh one opened (its thread exits when the
read returns: OpenCV captures must not be released across threads), at most ABANDONED_MAX
at a time. A bad frame is the frame's fault, not the source's: it is skipped and counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from waterrock.rate_limit import RateLimitedLog
from waterrock.snapshots import ObstacleSnapshot
from waterrock.tracking.frame import CorruptFrame, Frame, check_frame
from waterrock.tracking.pipeline import Pipeline, pipeline_for
from waterrock.tracking.settings import TrackingSettings
from waterrock.tracking.sources import FrameSource, source_from_settings

log = logging.getLogger(__name__)
WATCH_INTERVAL = 0.05  # s between the watchdog's looks at the worker
NOT_READING = (np.inf, 0.0)  # TrackerRunner._reading_since while the worker is not in a read
CADENCE_FRAMES = 15  # the recent intervals between frames that give a source's cadence
LATE_AFTER = 2.0  # a slow source's cadences without a frame before it counts as stalled
# Hung reads left behind at most; then the runner waits for one to return instead of opening the
# source again. A thread cannot be killed, and each reopen of a wedged device hung in its read for
# good, holding a thread and a handle on the device (1,200 an hour at 3 s). A device that a reopen
# brings back gets two; one that stays wedged needs its process restarted.
ABANDONED_MAX = 2
_END = object()  # what next() returns when a source's frames end: a source may yield None


@dataclass(frozen=True)
class RunnerState:
    """What an overlay shows."""

    status: str  # 'running', 'reconnecting', 'stalled', 'stopped'
    fps: float
    frames: int  # frames processed
    skipped: int  # frames skipped as corrupt
    reconnects: int
    latency_ms: float  # last frame: from the source yielding it to its obstacles being published
    obstacles: int
    last_error: str | None
    source: str


def faded(snap: ObstacleSnapshot, age: float, stall_after: float, fade_time: float) -> ObstacleSnapshot:
    """``snap`` as the frame loop should see it ``age`` seconds after it was published: as is
    until ``stall_after``, then its weights falling to 0 over ``fade_time``, then nothing."""
    if age <= stall_after or not len(snap):
        return snap
    fade = 1.0 - (age - stall_after) / fade_time
    if fade <= 0.0:
        return ObstacleSnapshot.empty(snap.timestamp)
    return ObstacleSnapshot(
        snap.timestamp, snap.a, snap.b, snap.radius, snap.velocity, snap.ids, snap.weight * np.float32(fade)
    )


class TrackerRunner:
    def __init__(
        self,
        open_source: Callable[[], FrameSource],
        settings: TrackingSettings | None = None,
        pipeline_factory: Callable[[Frame, FrameSource], Pipeline] | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_publish: Callable[[ObstacleSnapshot, Frame, Pipeline, float, float], None] | None = None,
    ) -> None:
        """``on_publish(snap, frame, pipeline, arrived, done)`` is called by the worker with each
        frame's obstacles (the tracker process writes them to shared memory there)."""
        self.settings = settings or TrackingSettings()
        self._on_publish = on_publish
        self._open_source = open_source
        self._pipeline_factory = pipeline_factory or (
            lambda frame, src: pipeline_for(self.settings, frame, src.calibration)
        )
        self.pipeline: Pipeline | None = None  # kept across reconnects: the background stays learned
        self._clock = clock
        self._published: tuple[ObstacleSnapshot, float] = (ObstacleSnapshot.empty(), -np.inf)
        self._picture: tuple[Frame, np.ndarray | None] | None = None  # the last frame and its foreground
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._worker: threading.Thread | None = None
        self._abandoned: list[threading.Thread] = []  # workers left hung in a read
        self._wedged_read = NOT_READING  # the hung read the watchdog has reported it cannot abandon
        self._generation = 0
        self._connected = False
        self._source_name = "?"
        self._frames = self._skipped = self._reconnects = 0
        self._latency = 0.0
        self._fps = 0.0
        self._last_error: str | None = None
        self._last_frame_wall = -np.inf  # clock() when the last frame arrived, corrupt or not
        # the watchdog's measure of a read: the process's pauses it has seen so far, and, set by
        # the worker each time it turns to the source, (clock(), those pauses) then
        self._paused = 0.0
        self._reading_since = NOT_READING
        self._warn = RateLimitedLog(log)
        self._prev_done: float | None = None
        self._intervals: deque[float] = deque(maxlen=CADENCE_FRAMES)  # the worker's alone
        self._stall_after = self.settings.stall_timeout  # see stall_after; written by the worker
        self._lock = threading.Lock()  # guards the pipeline between an abandoned and a fresh worker

    @classmethod
    def from_settings(cls, settings: TrackingSettings) -> TrackerRunner:
        return cls(lambda: source_from_settings(settings), settings)

    # --- the frame loop's side: never blocks ---------------------------------------------

    def latest(self, now: float | None = None) -> ObstacleSnapshot:
        """The newest obstacles, faded if frames have stopped coming. Never blocks."""
        snap, arrived = self._published
        if not len(snap):
            return snap
        age = (self._clock() if now is None else now) - arrived
        return faded(snap, age, self._stall_after, self.settings.fade_time)

    def latest_picture(self) -> tuple[Frame, np.ndarray | None] | None:
        """The last frame processed and its foreground mask (None while the background is being
        learned), for the tracker view; None before the first frame. Never blocks."""
        return self._picture

    def state(self) -> RunnerState:
        if not self.running:
            status = "stopped"
        elif not self._connected:
            status = "reconnecting"
        elif self._clock() - self._last_frame_wall > self._stall_after:
            status = "stalled"
        else:
            status = "running"
        return RunnerState(
            status,
            self._fps,
            self._frames,
            self._skipped,
            self._reconnects,
            self._latency * 1000.0,
            len(self.latest()),
            self._last_error,
            self._source_name,
        )

    @property
    def stall_after(self) -> float:
        """Seconds without a frame before the source counts as stalled and its obstacles start to
        fade: ``stall_timeout``, or, for a source whose frames come further apart than that,
        LATE_AFTER times its cadence, at most ``stall_reconnect``. The cadence is the second
        longest of its last CADENCE_FRAMES intervals, about their 90th percentile: a tracker
        that shares a 2-core machine with software rendering gets frames through in bursts,
        between the frame loop's renders (measured, the default scene headless: 2 to 12 a
        second, with gaps of a render's 0.15 s and more); against a fixed 0.2 s, every visitor
        faded by up to a third between two frames and the status read 'stalled' for 40 % of a
        run. One long gap alone does not move the cadence: a 30 fps camera that stops still
        fades after ``stall_timeout``."""
        return self._stall_after

    @property
    def running(self) -> bool:
        return not self._stop.is_set() and any(t.is_alive() for t in self._threads)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> TrackerRunner:
        self._stop.clear()
        self._spawn()
        watchdog = threading.Thread(target=self._watch, name="tracker-watchdog", daemon=True)
        watchdog.start()
        self._threads.append(watchdog)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self._threads = [t for t in self._threads if t.is_alive()]  # hung in a read: left to die

    def reload(self) -> None:
        """Build the pipeline afresh from the next frame on, reading the calibration and the saved
        background again (a new calibration written while running, or the soak's torn files); the
        source stays open. Waits for the frame in hand, at most a background's learning."""
        with self._lock:
            self.pipeline = None

    def __enter__(self) -> TrackerRunner:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _spawn(self) -> None:
        if self._worker is not None and self._worker.is_alive():
            self._abandoned.append(self._worker)
        self._generation += 1
        t = threading.Thread(target=self._work, args=(self._generation,), name="tracker", daemon=True)
        t.start()
        self._worker = t
        self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _may_abandon(self, read: tuple[float, float]) -> bool:
        """Whether another hung read may be left behind (see ABANDONED_MAX); if not, say once per
        hung read that the source is wedged, and wait for a read to return."""
        self._abandoned = [t for t in self._abandoned if t.is_alive()]
        if len(self._abandoned) < ABANDONED_MAX:
            return True
        if read != self._wedged_read:
            self._wedged_read = read
            self._last_error = (
                f"the source is wedged: {len(self._abandoned) + 1} reads hung; "
                "waiting for one to return before opening it again"
            )
            log.warning("tracker: %s", self._last_error)
        return False

    def _turn_to_source(self) -> None:
        """The worker is about to read: the watchdog's clock on the read starts now."""
        self._reading_since = (self._clock(), self._paused)

    def _watch(self) -> None:
        """Abandon a worker stuck in one read for longer than stall_reconnect, start a fresh one.

        Only the read counts: the time the worker spends on a frame it has (learning the
        background takes a second) is not the source's. Nor is what holds up the whole process,
        which holds up this thread too: the clock skips whatever this thread's looks come late.
        A kernel compile holds the GIL for tenths of a second at a time, seconds in all, at
        start-up on a small machine; a slow frame loop holds it in C calls of tens of
        milliseconds (measured: a WCSPH scene at 5.7 fps on 2 cores, 125 ms of software
        rendering and 50 ms of solve a frame, where this thread's looks came 1.95 s late in all
        over 4 s, in steps of under 0.14 s). A hung read costs the process nothing, so the clock
        still runs out on it. Each variable has one writer: no lock."""
        last = self._clock()
        while not self._stop.wait(WATCH_INTERVAL):
            now = self._clock()
            self._paused += max(now - last - WATCH_INTERVAL, 0.0)
            last = now
            read = self._reading_since
            since, paused_then = read
            hung = now - since - (self._paused - paused_then) > self.settings.stall_reconnect
            if self._connected and hung and self._may_abandon(read):
                self._last_error = f"no frame for {self.settings.stall_reconnect:.1f} s: reopening the source"
                log.warning("tracker: %s", self._last_error)
                self._connected = False
                self._reconnects += 1
                self._spawn()

    # --- the worker ---------------------------------------------------------------------

    def _work(self, generation: int) -> None:
        s = self.settings
        backoff = s.reconnect_initial
        while not self._stop.is_set() and generation == self._generation:
            source = None
            try:
                source = self._open_source()
                self._source_name = source.describe()
                frames = iter(source)
                self._turn_to_source()  # before the watchdog may look again
                self._connected = True
                self._last_frame_wall = self._clock()
                while not self._stop.is_set():
                    self._turn_to_source()
                    frame = next(frames, _END)
                    if generation != self._generation:
                        return  # abandoned while hung in the read; a fresh worker has the source
                    self._reading_since = NOT_READING
                    if frame is _END:
                        raise StopIteration("the source stopped delivering frames")
                    self._handle(frame, source)
                    backoff = s.reconnect_initial
                return
            except Exception as err:  # noqa: BLE001 - any failure of a device means: reopen it
                if generation != self._generation:
                    return
                self._connected = False
                self._last_error = f"{type(err).__name__}: {err}"
                self._reconnects += 1
                log.warning("tracker source failed (%s); reopening in %.2f s", self._last_error, backoff)
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2.0, s.reconnect_max)
            finally:
                close = getattr(source, "close", None)
                if callable(close):
                    close()

    def _handle(self, frame: Frame, source: FrameSource) -> None:
        arrived = self._clock()
        self._last_frame_wall = arrived
        with self._lock:
            try:
                check_frame(frame)  # before a pipeline is chosen by it: any first frame may be bad
                if self.pipeline is None:
                    self.pipeline = self._pipeline_factory(frame, source)
                pipeline = self.pipeline  # reload() may drop it once the lock is let go
                snap = pipeline.process(frame)
            except Exception as err:  # noqa: BLE001 - the frame's fault or the pipeline's: never reopen the source
                self._skip(err)
                return
        done = self._clock()
        self._published = (snap, done)
        self._picture = (frame, pipeline.foreground())
        if self._on_publish is not None:
            self._on_publish(snap, frame, pipeline, arrived, done)
        self._latency = done - arrived
        self._frames += 1
        # a smoothed rate for the overlay: the display needs a steady number, not each interval
        if self._frames > 1 and self._prev_done is not None and done > self._prev_done:
            inst = 1.0 / (done - self._prev_done)
            self._fps = inst if self._fps == 0 else 0.9 * self._fps + 0.1 * inst
            self._intervals.append(done - self._prev_done)
            s = self.settings
            cadence = sorted(self._intervals)[-2] if len(self._intervals) >= 3 else 0.0
            self._stall_after = min(max(s.stall_timeout, LATE_AFTER * cadence), s.stall_reconnect)
        self._prev_done = done

    def _skip(self, err: Exception) -> None:
        """Count a frame that could not be used. A corrupt one is the sensor's everyday noise; any
        other failure is named in the state too, since reopening the source would not cure it."""
        self._skipped += 1
        if isinstance(err, CorruptFrame):
            self._warn.warning("tracker: skipped a corrupt frame: %s", err)
            return
        self._last_error = f"a frame could not be processed: {type(err).__name__}: {err}"
        self._warn.warning("tracker: skipped a frame: %s", self._last_error)
