"""TrackerProcess: the tracker in a process of its own, its obstacles in shared memory.

A tracker thread shares the interpreter lock with Taichi's CPU kernels and software GL, which
hold it for tens of milliseconds at a time: beside the frame loop on 2 cores it got 1 to 2
frames a second of a 30 fps camera. In a process of its own it keeps the camera's rate.

The child runs a :class:`~waterrock.tracking.runner.TrackerRunner` (its reconnects, stall
detection and skipped frames are the same code as in one process). Frames never leave it; what
crosses is small and fixed in size, in one block of shared memory that the frame loop only
reads:

- the obstacles of the newest frame (at most MAX_OBSTACLES), with when the frame arrived and
  when its obstacles were published, written by the child's tracker thread after each frame;
- the runner's state (status, rate, counters, last error, source), and a heartbeat, written by
  the child's main thread every STATE_INTERVAL;
- a small picture of the newest frame and its foreground mask (the tracker panel), at most
  PICTURE_HZ times a second.

Each part is a seqlock (Lamport 1977, "Concurrent reading and writing"; the Linux kernel's
seqcount): its one writer makes the sequence number odd, writes, makes it even again; a reader
copies the part between two reads of the number and keeps the copy only if both are the same
even number, else reads again. Neither side ever waits on the other. An aligned 8-byte store
is atomic on the machines we run on, and x86-64 keeps stores in order; numpy writes the fields
in the order the code gives.

The parent watches the child: a child that exits, or whose heartbeat stops for
``process_timeout`` seconds (hung in C code that no thread of its own can leave), is killed and
started again with a backoff, its obstacles fading meanwhile as a stalled camera's do. The
overlay shows 'starting' and 'dead' besides the runner's own states.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing import shared_memory

import numpy as np

from waterrock.snapshots import ObstacleSnapshot
from waterrock.tracking.frame import Frame
from waterrock.tracking.runner import RunnerState, faded
from waterrock.tracking.settings import TrackingSettings

log = logging.getLogger(__name__)

MAX_OBSTACLES = 256  # people and hands a frame: far beyond a crowd on one camera
PICTURE_W, PICTURE_H = 320, 320  # the largest picture the panel gets; a frame is scaled to fit
PICTURE_HZ = 5.0
STATE_INTERVAL = 0.05  # s between the child's state writes and its looks at its parent
START_GRACE = 60.0  # s a fresh child may take to import and open its source before its first heartbeat
RESTART_INITIAL, RESTART_MAX = 0.5, 8.0  # s, doubled on each death in a row
HEALTHY_AFTER = 30.0  # s of life after which the next death starts the backoff over
TEXT_BYTES = 256

STATUSES = ("starting", "running", "reconnecting", "stalled", "stopped", "dead")

# int64 header slots
_OBS_SEQ, _OBS_COUNT, _STATE_SEQ, _STATUS, _FRAMES, _SKIPPED, _RECONNECTS = range(7)
_PIC_SEQ, _PIC_H, _PIC_W, _PIC_KIND, _PIC_MASK, _STOP, _RELOAD, _PID = range(7, 15)
_INTS = 16
# float64 header slots
_TIMESTAMP, _ARRIVED, _PUBLISHED, _FPS, _LATENCY, _STALL_AFTER, _HEARTBEAT, _PIC_TS = range(8)
_FLOATS = 8
_ROW = 14  # float32 a(3) b(3) radius velocity(3) weight, and the id as two float32 words (int64)

_KIND_COLOR, _KIND_DEPTH = 1, 2


class Board:
    """The shared block's fields as numpy views (see the module doc for who writes what)."""

    @staticmethod
    def size() -> int:
        return (
            8 * _INTS + 8 * _FLOATS + 2 * TEXT_BYTES
            + 4 * _ROW * MAX_OBSTACLES
            + PICTURE_W * PICTURE_H * 3 + PICTURE_W * PICTURE_H
        )

    def __init__(self, buf) -> None:
        o = 0

        def take(dtype, count):
            nonlocal o
            a = np.ndarray((count,), dtype, buf, o)
            o += a.nbytes
            return a

        self.ints = take(np.int64, _INTS)
        self.floats = take(np.float64, _FLOATS)
        self.error = take(np.uint8, TEXT_BYTES)
        self.source = take(np.uint8, TEXT_BYTES)
        self.rows = take(np.float32, _ROW * MAX_OBSTACLES).reshape(MAX_OBSTACLES, _ROW)
        self.picture = take(np.uint8, PICTURE_W * PICTURE_H * 3)
        self.mask = take(np.uint8, PICTURE_W * PICTURE_H)

    # --- seqlock --------------------------------------------------------------------------

    def _begin(self, slot: int) -> None:
        self.ints[slot] += 1  # odd: being written

    def _end(self, slot: int) -> None:
        self.ints[slot] += 1  # even: whole

    def _read(self, slot: int, copy: Callable[[], object], tries: int = 50):
        """``copy()`` taken while part ``slot`` was whole, or None if the writer kept it busy."""
        for _ in range(tries):
            before = int(self.ints[slot])
            if before & 1:
                time.sleep(0)  # the writer holds it for microseconds
                continue
            out = copy()
            if int(self.ints[slot]) == before:
                return out
        return None

    # --- the child's writes ---------------------------------------------------------------

    def write_obstacles(self, snap: ObstacleSnapshot, arrived: float, published: float) -> None:
        m = min(len(snap), MAX_OBSTACLES)
        rows = np.empty((m, _ROW), np.float32)
        rows[:, 0:3], rows[:, 3:6] = snap.a[:m], snap.b[:m]
        rows[:, 6], rows[:, 7:10], rows[:, 10] = snap.radius[:m], snap.velocity[:m], snap.weight[:m]
        rows[:, 12:14] = snap.ids[:m].astype(np.int64).view(np.float32).reshape(m, 2)
        self._begin(_OBS_SEQ)
        self.rows[:m] = rows
        self.ints[_OBS_COUNT] = m
        self.floats[[_TIMESTAMP, _ARRIVED, _PUBLISHED]] = (snap.timestamp, arrived, published)
        self._end(_OBS_SEQ)

    def write_state(self, st: RunnerState, stall_after: float) -> None:
        self._begin(_STATE_SEQ)
        self.ints[[_STATUS, _FRAMES, _SKIPPED, _RECONNECTS]] = (
            STATUSES.index(st.status), st.frames, st.skipped, st.reconnects
        )
        self.floats[[_FPS, _LATENCY, _STALL_AFTER, _HEARTBEAT]] = (
            st.fps, st.latency_ms, stall_after, time.monotonic()
        )
        _put_text(self.error, st.last_error or "")
        _put_text(self.source, st.source)
        self._end(_STATE_SEQ)

    def write_picture(self, frame: Frame, foreground: np.ndarray | None) -> None:
        import cv2

        image = frame.depth if frame.depth is not None else frame.color
        h, w = image.shape[:2]
        scale = min(PICTURE_W / w, PICTURE_H / h, 1.0)
        size = (max(1, int(w * scale)), max(1, int(h * scale)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)
        kind = _KIND_DEPTH if frame.depth is not None else _KIND_COLOR
        mask = None
        if foreground is not None and foreground.shape == (h, w):
            mask = cv2.resize(foreground.view(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        self._begin(_PIC_SEQ)
        raw = small.reshape(-1).view(np.uint8)
        self.picture[: raw.size] = raw
        if mask is not None:
            self.mask[: mask.size] = mask.reshape(-1)
        self.ints[[_PIC_H, _PIC_W, _PIC_KIND, _PIC_MASK]] = (size[1], size[0], kind, mask is not None)
        self.floats[_PIC_TS] = frame.timestamp
        self._end(_PIC_SEQ)

    # --- the parent's reads ---------------------------------------------------------------

    def obstacles(self) -> tuple[ObstacleSnapshot, float, float] | None:
        """(snapshot, arrived, published) of the newest frame, or None (being written)."""

        def copy():
            m = int(self.ints[_OBS_COUNT])
            return self.rows[:m].copy(), self.floats[[_TIMESTAMP, _ARRIVED, _PUBLISHED]].copy()

        got = self._read(_OBS_SEQ, copy)
        if got is None:
            return None
        rows, (ts, arrived, published) = got
        ids = np.ascontiguousarray(rows[:, 12:14]).view(np.int64).reshape(-1)
        snap = ObstacleSnapshot(
            float(ts), rows[:, 0:3], rows[:, 3:6], rows[:, 6], rows[:, 7:10], ids, rows[:, 10]
        )
        return snap, float(arrived), float(published)

    def state(self) -> tuple[np.ndarray, np.ndarray, str, str] | None:
        return self._read(
            _STATE_SEQ, lambda: (self.ints.copy(), self.floats.copy(), _get_text(self.error), _get_text(self.source))
        )

    def picture_frame(self) -> tuple[Frame, np.ndarray | None] | None:
        def copy():
            h, w, kind, has_mask = (int(x) for x in self.ints[[_PIC_H, _PIC_W, _PIC_KIND, _PIC_MASK]])
            if not h:
                return None
            ts = float(self.floats[_PIC_TS])
            mask = self.mask[: h * w].reshape(h, w) > 0 if has_mask else None
            if kind == _KIND_DEPTH:
                return Frame(ts, depth=self.picture[: h * w * 2].view(np.uint16).reshape(h, w).copy()), mask
            return Frame(ts, color=self.picture[: h * w * 3].reshape(h, w, 3).copy()), mask

        return self._read(_PIC_SEQ, copy)


def _put_text(field: np.ndarray, text: str) -> None:
    raw = text.encode("utf-8", "replace")[: TEXT_BYTES - 1]
    field[: len(raw)] = np.frombuffer(raw, np.uint8)
    field[len(raw):] = 0


def _get_text(field: np.ndarray) -> str:
    raw = field.tobytes()
    return raw[: raw.find(b"\0") if b"\0" in raw else len(raw)].decode("utf-8", "replace")


def _child_main(name: str, settings_json: str, open_source, parent_pid: int, log_level: int) -> None:
    """The tracker process: a TrackerRunner whose frames end on the board."""
    import cv2

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops us
    logging.basicConfig(level=log_level, format="%(asctime)s tracker[%(process)d] %(levelname)s %(message)s")
    cv2.setNumThreads(1)  # one core is the tracker's; OpenCV's pool would fight the solver's threads
    from waterrock.tracking.runner import TrackerRunner
    from waterrock.tracking.sources import source_from_settings

    # the spawned child shares its parent's resource tracker: attaching registers the name a second
    # time (a set: no change), and only the parent unlinks it
    shm = shared_memory.SharedMemory(name)
    board = Board(shm.buf)
    settings = TrackingSettings.model_validate_json(settings_json)
    last_picture = [-np.inf]

    def publish(snap, frame, pipeline, arrived, done) -> None:
        board.write_obstacles(snap, arrived, done)
        if done - last_picture[0] >= 1.0 / PICTURE_HZ:
            last_picture[0] = done
            board.write_picture(frame, pipeline.foreground())

    opener = open_source if open_source is not None else (lambda: source_from_settings(settings))
    runner = TrackerRunner(opener, settings, on_publish=publish).start()
    board.ints[_PID] = os.getpid()
    reload_seen = int(board.ints[_RELOAD])
    try:
        while not board.ints[_STOP] and os.getppid() == parent_pid:
            if int(board.ints[_RELOAD]) != reload_seen:
                reload_seen = int(board.ints[_RELOAD])
                runner.reload()
            board.write_state(runner.state(), runner.stall_after)
            time.sleep(STATE_INTERVAL)
    finally:
        runner.stop(timeout=0.5)
        board = None  # noqa: F841 - its views must go before the block can close
        try:
            shm.close()
        except BufferError:  # a worker hung in a read still holds a view: the exit frees it
            pass


class TrackerProcess:
    """The frame loop's side of the tracker process: the same calls as a TrackerRunner.

    ``open_source`` (a picklable callable: it crosses to the child once) opens the frames
    instead of the scene's source.
    """

    def __init__(self, settings: TrackingSettings, open_source: Callable | None = None) -> None:
        self.settings = settings
        self._open_source = open_source
        self._shm = shared_memory.SharedMemory(create=True, size=Board.size())
        self._board = Board(self._shm.buf)
        self._board.ints[:] = 0
        self._ctx = mp.get_context("spawn")  # never fork a process that holds Taichi's and GL's threads
        self._proc = None
        self._started_at = -np.inf
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self.restarts = 0
        self._dead_reason: str | None = None
        self._cached: tuple[int, ObstacleSnapshot, float, float] = (-1, ObstacleSnapshot.empty(), -np.inf, -np.inf)
        self._state_cache: tuple | None = None
        self.handoff_s = 0.0  # the last new frame: from its arrival in the child to latest() here
        self._lock = threading.Lock()  # latest() may be called from more than one thread (a panel)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> TrackerProcess:
        self._stop.clear()
        self._spawn()
        self._watchdog = threading.Thread(target=self._watch, name="tracker-process-watchdog", daemon=True)
        self._watchdog.start()
        return self

    def _spawn(self) -> None:
        b = self._board
        for seq in (_OBS_SEQ, _STATE_SEQ, _PIC_SEQ):  # a child killed mid-write left its part odd
            b.ints[seq] += b.ints[seq] & 1
        b.ints[_STOP] = 0
        b.ints[_PID] = 0
        b.floats[_HEARTBEAT] = -np.inf
        self._proc = self._ctx.Process(
            target=_child_main,
            args=(self._shm.name, self.settings.model_dump_json(), self._open_source, os.getpid(),
                  logging.getLogger().getEffectiveLevel()),
            name="waterrock-tracker",
            daemon=True,
        )
        self._proc.start()
        self._started_at = time.monotonic()

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the child to leave, and kill it if it has not within ``timeout`` (a read hung in a
        driver): the app's whole stop must fit in loop.STOP_GRACE."""
        self._stop.set()
        self._board.ints[_STOP] = 1
        if self._watchdog is not None:
            self._watchdog.join(timeout)
        self._end_child(timeout)
        self._cached = (-1, ObstacleSnapshot.empty(), -np.inf, -np.inf)
        try:
            self._shm.unlink()
        except FileNotFoundError:
            pass

    def _end_child(self, timeout: float) -> None:
        p = self._proc
        if p is None:
            return
        p.join(timeout)
        if p.exitcode is None:
            p.kill()
            p.join(1.0)

    def reload(self) -> None:
        """The child builds its pipeline afresh from the next frame (see TrackerRunner.reload)."""
        self._board.ints[_RELOAD] += 1

    def __enter__(self) -> TrackerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return not self._stop.is_set() and self._watchdog is not None and self._watchdog.is_alive()

    def _watch(self) -> None:
        """Start the child again when it dies or its heartbeat stops; back off when it keeps dying."""
        backoff = RESTART_INITIAL
        while not self._stop.wait(0.1):
            p = self._proc
            now = time.monotonic()
            beat = float(self._board.floats[_HEARTBEAT])
            if p.exitcode is not None:
                reason = f"the tracker process exited with code {p.exitcode}"
            elif np.isfinite(beat) and now - beat > self.settings.process_timeout:
                reason = f"the tracker process stopped answering for {now - beat:.1f} s"
            elif not np.isfinite(beat) and now - self._started_at > START_GRACE:
                reason = f"the tracker process did not start within {START_GRACE:.0f} s"
            else:
                if now - self._started_at > HEALTHY_AFTER:
                    backoff = RESTART_INITIAL
                continue
            self._dead_reason = reason
            log.warning("tracker: %s; starting it again in %.1f s", reason, backoff)
            if p.exitcode is None:
                p.kill()
            p.join(1.0)
            if self._stop.wait(backoff):
                return
            backoff = min(2.0 * backoff, RESTART_MAX)
            self.restarts += 1
            try:
                self._spawn()
            except Exception as err:  # noqa: BLE001 - no process now (out of memory, pids): try again later
                self._dead_reason = f"the tracker process could not be started: {type(err).__name__}: {err}"
                log.error("tracker: %s", self._dead_reason)

    # --- the frame loop's side: never blocks ---------------------------------------------

    def _newest(self) -> tuple[ObstacleSnapshot, float, float]:
        seq = int(self._board.ints[_OBS_SEQ])
        with self._lock:
            if seq == self._cached[0]:
                return self._cached[1:]
            got = self._board.obstacles()
            if got is None:  # being written this instant: the one before serves
                return self._cached[1:]
            snap, arrived, published = got
            if published > self._cached[3] and arrived > 0:
                self.handoff_s = time.monotonic() - arrived
            self._cached = (seq, snap, arrived, published)
            return got

    def latest(self, now: float | None = None) -> ObstacleSnapshot:
        """The newest obstacles, faded if frames have stopped coming (or the child is dead)."""
        snap, _arrived, published = self._newest()
        if not len(snap):
            return snap
        age = (time.monotonic() if now is None else now) - published
        # one aligned 8-byte word, written whole: no seqlock, nor the state's copy, every frame
        return faded(snap, age, float(self._board.floats[_STALL_AFTER]), self.settings.fade_time)

    def _state(self):
        got = self._board.state()
        if got is not None:
            self._state_cache = got
        return self._state_cache

    def state(self) -> RunnerState:
        st = self._state()
        alive = self._proc is not None and self._proc.exitcode is None
        if st is None or not np.isfinite(st[1][_HEARTBEAT]):
            status = "starting" if alive and self.running else "stopped"
            return RunnerState(status, 0.0, 0, 0, 0, 0.0, 0, self._dead_reason, self.settings.source)
        ints, floats, error, source = st
        status = STATUSES[int(ints[_STATUS])]
        if not self.running:
            status = "stopped"
        elif not alive or time.monotonic() - floats[_HEARTBEAT] > self.settings.process_timeout:
            status = "dead"
        return RunnerState(
            status,
            float(floats[_FPS]),
            int(ints[_FRAMES]),
            int(ints[_SKIPPED]),
            int(ints[_RECONNECTS]),
            float(floats[_LATENCY]),
            len(self.latest()),
            (self._dead_reason if status == "dead" else None) or error or None,
            source,
        )

    def latest_picture(self) -> tuple[Frame, np.ndarray | None] | None:
        """A small copy of the child's newest frame and its foreground, for the tracker panel."""
        return self._board.picture_frame()
