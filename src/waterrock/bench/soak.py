"""``waterrock soak --hours H [--faults] [--json PATH]``: the installation unattended at accelerated
time with a season's faults injected, then a report (issue 20). A benchmark, not a test.

The scene (the default one) runs headless and is not drawn: app/loop.py's FrameLoop with
``realtime=False`` steps one simulation frame after another as fast as the machine goes, so the
water runs at some multiple of real time (reported). It runs from a copy of the scene in a
temporary folder, with the synthetic visitors as the tracker's source (inside a FaultySource),
the OSC listener on 127.0.0.1 (a free port), and a calibration and a background file of its own.

With ``--faults`` a season is compressed into the run: SEASON says how many faults of each kind a
24-hour season brings, and all of them are spread over the run's H wall hours, each kind no
closer together than its ``gap`` (a short run gets fewer, never none). One injector function
per kind (INJECTORS) does each fault for real: the tracker's frames fail, freeze or turn to
garbage, packets go over UDP to the listener, the scene is saved from other threads, files are
torn in place, the log is written to /dev/full, and the process is stopped from outside.

A fault is *survived* when the loop completes a simulation frame within HANG_AFTER of it, and
*recovered* when its own check passes (the tracker processed a frame again within
RECOVER_WITHIN, the scene still loads as one of the projections just saved, the listener counted
what it was sent, the log handler swallowed the full disk). A watchdog thread records a hang when no frame completes for
HANG_AFTER and writes every thread's stack to the log; a run stuck past its end plus HANG_AFTER
is reported as it stands and ends with status 1. The particle budget is audited from the
solver's per-frame counters: what is active at the end must be what was active at the start,
plus what was emitted, less what was retired and what was non-finite.

Exit status 0 with no hang, no crash (the loop's, an injector's, or a thread's), no particle
lost, the threads grown by at most THREAD_GROWTH between the end of the warm-up and the end, and,
in a run of RSS_JUDGED_FROM or more, the RSS grown by less than RSS_GROWTH_MIB over its second
half (the median RSS of its last quarter against its second quarter's); 1 otherwise, or when a
signal stopped it early. The RSS is judged so, and only in a long run, because the allocator keeps
what a thread once used: each tracker worker opened after a frozen read takes a malloc arena of
its own (measured on 2 cores, 9 freezes in 108 s: 370 MiB, then between 395 and 430 MiB from the
second on; with MALLOC_ARENA_MAX=1, 361 MiB throughout), and every fault at once in 180 s took
the RSS from 362 to 436 MiB in steps, against 341 to 367 MiB with one arena; transient allocations
(a background learned, a burst parsed) add 150 MiB for a second. A leak goes on climbing. The
goals (GOALS) are reported, not judged: a short run cannot meet them.

An interactive shell sees the SIGSTOP fault as its job stopped: after the SIGCONT the soak runs on
in the background (``fg`` brings it back). Run the long soak from a script, nohup or tmux.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import logging
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from waterrock import files
from waterrock.tracking.frame import Frame
from waterrock.tracking.sources import DeviceNotFound, FrameSource, SourceError

log = logging.getLogger(__name__)

SCHEMA = 1
HANG_AFTER = 30.0  # s without a completed simulation frame: a hang
LATE_S = 1.0  # s behind its time: a fault of a kind already injected is left out (Soak.inject)
SAMPLES = 60  # RSS and threads sampled this many times over the run
FIRST_FRAME_WITHIN = 600.0  # s for the first frame (kernels compiled) before the watchdog gives up
RSS_GROWTH_MIB = 64.0  # the RSS may grow by less than this over the second half (medians of its quarters)
RSS_JUDGED_FROM = 600.0  # s: a shorter run reports the RSS without judging it
THREAD_GROWTH = 2  # threads at the end beyond those after the warm-up (runner.ABANDONED_MAX reads may hang)
CAMERA_AWAY = 1.0  # s a lost camera stays unplugged before it works again
FREEZE_BEYOND = 1.5  # s a frozen read lasts beyond the tracker's stall_reconnect
RECOVER_WITHIN = 20.0  # s for the tracker to process a frame again after a fault of its own
OSC_WAIT = 5.0  # s the OSC injectors wait for the listener to count what they sent
DISK_FULL_LINES = 20  # lines logged, 0.1 s apart, while the log file is /dev/full
STOP_FOR = 0.5  # s between SIGSTOP and SIGCONT
OSC_GARBAGE_PACKETS = 25  # malformed packets an osc_garbage fault sends: 400 a season make the goal's 10,000
OSC_BURST_MESSAGES = 5000
OSC_IDS = 64  # the ids bursts use: as many as osc_max_objects holds by default
GARBAGE_FRAMES = ("none", "float_depth", "empty_depth", "nan_timestamp", "not_a_frame")
TORN = ("half", "empty", "zeros")  # what a torn file holds: its first half, nothing, its length in zeros


@dataclass(frozen=True)
class FaultKind:
    """A kind of fault: how many a 24-hour season brings, and the fewest wall seconds between two."""

    name: str
    season: int
    gap: float
    what: str

    def count(self, window_s: float) -> int:
        """How many the run's injection window holds: the season's, at most one per gap, at least one."""
        return max(1, min(self.season, int(window_s / self.gap)))


SEASON = (
    FaultKind("camera_loss", 100, 5.0, f"the source raises or ends, is unplugged {CAMERA_AWAY:g} s, then works"),
    FaultKind("frozen_frame", 48, 15.0, f"a read hangs stall_reconnect + {FREEZE_BEYOND:g} s"),
    FaultKind("garbage_frame", 1000, 2.0, "a frame that is None, float depth, empty, NaN-stamped or no Frame"),
    FaultKind("osc_garbage", 400, 1.0, f"{OSC_GARBAGE_PACKETS} malformed packets (7 kinds), a bundle for tomorrow"),
    FaultKind("osc_burst", 48, 15.0, f"{OSC_BURST_MESSAGES:,} valid messages at once (datagrams or bundles)"),
    FaultKind("scene_edit", 200, 2.0, "save_projection from another thread, every third twice at once"),
    FaultKind("torn_write", 1000, 2.0, "calibration or background torn in place, the tracker reloads"),
    FaultKind("disk_full", 24, 20.0, f"the log on /dev/full for {DISK_FULL_LINES} lines"),
    FaultKind("sigstop", 48, 10.0, f"SIGSTOP, {STOP_FOR:g} s, SIGCONT from another process"),
)
# kinds that share a thread (see Soak.lanes): the tracker's, each of which waits for it to process a
# frame again (queued while it was down, they struck it down together and it never ran again), and
# the listener's, whose checks count what it has heard
LANE = {"camera_loss": "tracker", "frozen_frame": "tracker", "garbage_frame": "tracker", "torn_write": "tracker",
        "osc_garbage": "osc", "osc_burst": "osc"}
GOALS = {"accelerated_hours": 24.0, "camera_loss": 100, "malformed_packets": 10_000, "torn_write": 1000}


def schedule(window: tuple[float, float], rng: np.random.Generator, kinds: tuple[str, ...]) -> list[tuple[float, str]]:
    """(seconds after the first frame, kind) for every fault of ``kinds``, in time order: each kind's
    faults spread evenly over the window, each at a random point of its own slot."""
    t0, t1 = window
    events = []
    for kind in (k for k in SEASON if k.name in kinds):
        n = kind.count(t1 - t0)
        slots = t0 + (np.arange(n) + rng.uniform(0.05, 0.95, n)) * (t1 - t0) / n
        events += [(float(t), kind.name) for t in slots]
    return sorted(events)


def windows(run_s: float) -> tuple[float, float]:
    """The warm-up (s after the first frame; RSS and threads are counted from its end) and the
    quiet end (no fault starts within it, so the last ones have recovered when the run stops)."""
    return min(max(0.05 * run_s, 3.0), 120.0), min(max(0.1 * run_s, 10.0), 120.0)


def rss_and_threads() -> tuple[float, int]:
    """The process's resident memory (MiB) and its threads: the OS's count (Taichi's too), less the
    soak's own (named soak-*), which come and go with the schedule."""
    rss, threads = math.nan, 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024.0
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss, threads - sum(t.name.startswith("soak-") for t in threading.enumerate())


def python_threads() -> int:
    return sum(not t.name.startswith("soak-") for t in threading.enumerate())


def _wait(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(step)
    return True


# --- the tracker's source, with faults in it -------------------------------------------------------


@dataclass
class FrameFault:
    """One fault waiting for the tracker's next read; ``taken`` is the tracker's frame count when a
    read took it, so that recovery means a frame processed after it."""

    kind: str  # 'raise', 'end', 'freeze', or one of GARBAGE_FRAMES
    taken: int | None = None


class FrameFaults:
    """The faults the injectors queue for FaultySource, and the camera's absence."""

    def __init__(self, tracker_frames: Callable[[], int], freeze_s: float) -> None:
        self.tracker_frames = tracker_frames
        self.freeze_s = freeze_s
        self.away_until = 0.0  # time.monotonic() until which opening the source fails
        self.release = threading.Event()  # set at the end: a frozen read returns at once
        self._pending: deque[FrameFault] = deque()
        self._lock = threading.Lock()

    def add(self, kind: str) -> FrameFault:
        fault = FrameFault(kind)
        with self._lock:
            self._pending.append(fault)
        return fault

    def take(self) -> FrameFault | None:
        with self._lock:
            if not self._pending:
                return None
            fault = self._pending.popleft()
        fault.taken = self.tracker_frames()
        return fault


def garbage_frame(kind: str, frame: Frame):
    """What a broken sensor hands over instead of ``frame``."""
    if kind == "none":
        return None
    if kind == "float_depth":
        return Frame(frame.timestamp, depth=frame.depth.astype(np.float32), index=frame.index)
    if kind == "empty_depth":
        return Frame(frame.timestamp, depth=np.zeros((0, 0), np.uint16), index=frame.index)
    if kind == "nan_timestamp":
        return Frame(math.nan, depth=frame.depth, index=frame.index)
    return frame.depth  # not a Frame at all


class FaultySource(FrameSource):
    """The scene's source, opened afresh each time, but a queued fault replaces its next frame: the
    camera is lost (the iteration raises or ends, and opening fails for CAMERA_AWAY), a read
    freezes, or a garbage frame comes instead."""

    def __init__(self, inner: FrameSource, faults: FrameFaults) -> None:
        self.inner, self.faults = inner, faults
        self.name = f"soak:{inner.describe()}"
        self.calibration = inner.calibration

    def __iter__(self) -> Iterator:
        faults = self.faults
        if time.monotonic() < faults.away_until:
            raise DeviceNotFound("soak: the camera is unplugged")
        for frame in self.inner:
            fault = faults.take()
            if fault is None:
                yield frame
            elif fault.kind in ("raise", "end"):
                faults.away_until = time.monotonic() + CAMERA_AWAY
                if fault.kind == "raise":
                    raise SourceError("soak: the camera was unplugged")
                return
            elif fault.kind == "freeze":
                faults.release.wait(faults.freeze_s)
                yield frame
            else:
                yield garbage_frame(fault.kind, frame)


# --- the run ----------------------------------------------------------------------------------------


@dataclass
class Injection:
    kind: str
    at: float  # s after the first frame
    detail: str = ""
    survived: bool = False  # a simulation frame completed within HANG_AFTER after it
    recovered: bool = False  # its own check (see the injectors)


@dataclass
class Book:
    """The particle cycle's counters, summed over every frame the loop stepped."""

    active_start: int
    active: int = 0
    emitted: int = 0
    retired: int = 0
    nonfinite: int = 0
    frame: int = -1

    def add(self, stats: dict) -> None:
        if stats and stats.get("frame") != self.frame:
            self.frame = stats["frame"]
            self.active = stats["active"]
            self.emitted += stats["emitted"]
            self.retired += stats["retired"]
            self.nonfinite += stats["nonfinite"]

    @property
    def lost(self) -> int:
        """Particles neither active at the end nor accounted for by the counters (0 when none is lost)."""
        return self.active_start + self.emitted - self.retired - self.nonfinite - self.active


class Soak:
    """The scene copy, the solver, the inputs and the loop of one soak; the injectors' target."""

    def __init__(self, scene, folder: Path, arch: str | None, hours: float, kinds: tuple[str, ...] = (),
                 seed: int = 0, json_path: str | Path | None = None) -> None:
        from waterrock.app.loop import FrameLoop
        from waterrock.app.session import Inputs
        from waterrock.scene import load_scene
        from waterrock.solver.solver import Solver
        from waterrock.tracking.calibrate import save_calibration
        from waterrock.tracking.sources import source_from_settings
        from waterrock.tracking.synthetic import overhead_camera

        self.hours, self.kinds, self.json_path = hours, kinds, json_path
        self.run_s = 3600.0 * hours
        self.warmup_s, self.quiet_s = windows(self.run_s)
        self.seed = seed
        self._lane = threading.local()
        self.folder = folder
        self.calibration_path = self.folder / "calibration.json"
        self.background_path = self.folder / "background.npz"
        save_calibration(overhead_camera(), self.calibration_path)  # the synthetic camera's, as calibrated
        self.whole = {self.calibration_path: self.calibration_path.read_bytes()}
        self.scene_path = scene_copy(scene, self.folder)
        self.scene = load_scene(self.scene_path)
        self.solver = Solver(self.scene, arch=arch)
        tracking = self.scene.tracking
        self.frame_faults = FrameFaults(lambda: self.tracker().frames, tracking.stall_reconnect + FREEZE_BEYOND)
        self.inputs = Inputs(self.scene, self.solver,
                             open_source=lambda: FaultySource(source_from_settings(tracking), self.frame_faults))
        self.loop = FrameLoop(self.solver, self.inputs.obstacles, None, realtime=False)
        self.book = Book(self.solver.active, self.solver.active)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.injections: list[Injection] = []
        self.counts = dict.fromkeys(("malformed_packets", "future_bundles", "burst_messages", "burst_counted",
                                     "disk_lines_lost"), 0)
        self.errors: list[str] = []  # crashes: the loop's, an injector's, an uncaught one in a thread
        self.hangs = 0
        self.first: tuple[float, float] | None = None  # (perf_counter, solver.time) at the first frame
        self.start: tuple[float, int] | None = None  # (RSS MiB, threads) at the end of the warm-up
        self.start_py_threads = 0
        self.done = threading.Event()
        self.samples: list[tuple[float, float, int]] = []  # (s after the first frame, RSS MiB, threads)
        self._last_progress = 0.0

    # --- what the injectors and the report read --------------------------------------------------

    def tracker(self):
        return self.inputs.runner.state()

    def elapsed(self) -> float:
        return 0.0 if self.first is None else time.perf_counter() - self.first[0]

    def osc_total(self) -> int:
        return sum(dataclasses.astuple(self.inputs.osc.stats())) if self.inputs.osc is not None else 0

    def send(self, packet: bytes) -> None:
        self.udp.sendto(packet, self.inputs.osc.address)

    # --- the loop's side: once before every frame ----------------------------------------------

    def poll(self) -> None:
        self.book.add(self.loop.last_stats)
        if self.first is None and self.loop.sim_frames:
            self.first = (time.perf_counter(), self.solver.time - self.loop.sim_dt)
        if self.start is None and self.first is not None and self.elapsed() >= self.warmup_s:
            self.start, self.start_py_threads = rss_and_threads(), python_threads()

    def every_second(self, loop) -> None:
        t = self.elapsed()
        if t - self._last_progress >= max(10.0, self.run_s / 20):
            self._last_progress = t
            n = len(self.injections)
            print(f"soak: {t:.0f} of {self.run_s:.0f} s, {loop.sim_frames} frames, {self.solver.time:.0f} s simulated, "
                  f"{n} faults", file=sys.stderr, flush=True)

    # --- the faults' threads ------------------------------------------------------------------

    def lanes(self) -> list[threading.Thread]:
        """One thread per lane (a kind, or the OSC kinds together: their checks count one listener),
        so that a fault that takes a while (a full disk, a torn file waiting for the tracker)
        delays only its own kind."""
        window = (self.warmup_s, self.run_s - self.quiet_s)
        events = schedule(window, np.random.default_rng(self.seed), self.kinds)
        lanes: dict[str, list[tuple[float, str]]] = {}
        for at, kind in events:
            lanes.setdefault(LANE.get(kind, kind), []).append((at, kind))
        return [threading.Thread(target=self.inject, args=(i, evs), name=f"soak-{lane}", daemon=True)
                for i, (lane, evs) in enumerate(lanes.items())]

    def inject(self, lane: int, events: list[tuple[float, str]]) -> None:
        """Run a lane's faults, each when it is due (late if the one before took long, none once the
        quiet end has begun), then wait for the loop to complete a frame (survived)."""
        self._lane.rng = np.random.default_rng((self.seed, lane))
        while self.first is None:  # the schedule counts from the first frame
            if self.done.wait(0.1):
                return
        end = self.run_s - self.quiet_s
        done: dict[str, int] = {}
        for i, (at, kind) in enumerate(events):
            if self.done.wait(max(at - self.elapsed(), 0.0)) or self.elapsed() > end:
                return
            if done.get(kind) and self.elapsed() - at > LATE_S and {k for _, k in events[i:]} - done.keys():
                # behind schedule (a short run's lane is full): a kind already injected gives way, so
                # that every kind of the lane is injected at least once before the quiet end
                continue
            inj = Injection(kind, self.elapsed())
            try:
                inj.detail, inj.recovered = INJECTORS[kind](self, done.get(kind, 0))
            except Exception as err:  # noqa: BLE001 - the soak's own failure: reported, the run goes on
                self.errors.append(f"injector {kind}: {type(err).__name__}: {err}")
                log.error("soak: the %s injector failed", kind, exc_info=err)
                continue
            done[kind] = done.get(kind, 0) + 1
            frames = self.loop.sim_frames  # once the fault is done (a SIGCONT sent, a full disk gone)
            inj.survived = _wait(lambda f=frames: self.loop.sim_frames > f, HANG_AFTER)
            self.injections.append(inj)

    @property
    def rng(self) -> np.random.Generator:
        """The calling lane's own generator: numpy's are not for sharing between threads."""
        return self._lane.rng

    # --- the watchdog -------------------------------------------------------------------------

    def watch(self) -> None:
        """Record a hang when no simulation frame completes for HANG_AFTER (the stacks into the log);
        report and end the process when the run is still going HANG_AFTER past its end (or has not
        shown a first frame in FIRST_FRAME_WITHIN)."""
        from waterrock.app.logs import fault_stream

        frames, since, hung = 0, time.perf_counter(), False
        started = since
        every = max(1.0, self.run_s / SAMPLES)
        while not self.done.wait(1.0):
            now = time.perf_counter()
            if self.first is not None and self.elapsed() >= len(self.samples) * every:
                self.samples.append((round(self.elapsed(), 1), *rss_and_threads()))
            if self.loop.sim_frames != frames:
                frames, since, hung = self.loop.sim_frames, now, False
            elif not hung and frames and now - since > HANG_AFTER:
                hung = True
                self.hangs += 1
                log.error("soak: no simulation frame for %.0f s: a hang (every thread's stack follows)", HANG_AFTER)
                faulthandler.dump_traceback(fault_stream(), all_threads=True)
            end = self.first[0] + self.run_s if self.first else started + FIRST_FRAME_WITHIN
            if now > end + HANG_AFTER:
                self.hangs += not hung
                self.finish(self.report(ended_by="the watchdog: the run went on past its end"))
                os._exit(1)

    # --- the whole run -------------------------------------------------------------------------

    def run(self) -> dict:
        threads = [threading.Thread(target=self.watch, name="soak-watchdog", daemon=True)]
        if self.kinds:
            threads += self.lanes()
        previous_hook = threading.excepthook

        def thread_crash(args) -> None:
            self.errors.append(f"thread {args.thread.name if args.thread else '?'}: {args.exc_type.__name__}: "
                               f"{args.exc_value}")
            previous_hook(args)

        threading.excepthook = thread_crash
        for t in threads:
            t.start()
        try:
            rc = self.loop.run(seconds=self.run_s, poll=self.poll, every_second=self.every_second)
            self.book.add(self.loop.last_stats)
            if rc != 0:
                self.errors.append(f"the frame loop: {type(self.loop.error).__name__}: {self.loop.error}")
            return self.report()
        finally:
            self.done.set()
            self.frame_faults.release.set()
            threading.excepthook = previous_hook

    def close(self) -> None:
        self.done.set()
        self.frame_faults.release.set()
        self.inputs.close()
        self.udp.close()

    # --- the report ----------------------------------------------------------------------------

    def finish(self, report: dict) -> None:
        """Print the table and write the JSON."""
        print(table(report), flush=True)
        if self.json_path:
            Path(self.json_path).parent.mkdir(parents=True, exist_ok=True)
            files.write_json(self.json_path, report, indent=1)
            print(f"results: {self.json_path}", flush=True)

    def report(self, ended_by: str | None = None) -> dict:
        end_rss, end_threads = rss_and_threads()
        start_rss, start_threads = self.start or (end_rss, end_threads)  # a run that ended within its warm-up
        wall = self.elapsed()
        sim = self.solver.time - (self.first[1] if self.first else 0.0)
        injections = list(self.injections)
        faults = {}
        for kind in SEASON:
            mine = [i for i in injections if i.kind == kind.name]
            faults[kind.name] = {
                "planned": kind.count(self.run_s - self.quiet_s - self.warmup_s) if kind.name in self.kinds else 0,
                "season": kind.season, "injected": len(mine), "survived": sum(i.survived for i in mine),
                "recovered": sum(i.recovered for i in mine), "what": kind.what,
                "not_recovered": [f"{i.at:.1f} s {i.detail}" for i in mine if not i.recovered][:5],
            }
        tracker = dataclasses.asdict(self.tracker())
        osc = dataclasses.asdict(self.inputs.osc.stats()) if self.inputs.osc is not None else None
        b = self.book
        accel = sim / wall if wall > 0 else 0.0
        rss_growth = end_rss - start_rss
        # the median of the last quarter's samples less the second quarter's: a transient allocation
        # (a background learned, a burst parsed) took 150 MiB for a second and is gone the next
        second = [s[1] for s in self.samples if max(self.warmup_s, wall / 4) <= s[0] <= wall / 2]
        last = [s[1] for s in self.samples if s[0] >= 3 * wall / 4]
        late_growth = float(np.median(last) - np.median(second)) if second and last else rss_growth
        thread_growth = end_threads - start_threads
        failures = []
        if self.hangs:
            failures.append(f"{self.hangs} hangs")
        if self.errors:
            failures.append(f"{len(self.errors)} crashes")
        if b.lost:
            failures.append(f"{b.lost} particles lost")
        rss_judged = self.run_s >= RSS_JUDGED_FROM
        if rss_judged and not late_growth < RSS_GROWTH_MIB:
            failures.append(f"RSS grew {late_growth:.1f} MiB over the second half (bound {RSS_GROWTH_MIB:g})")
        if self.loop.stopping:
            failures.append(f"stopped by a signal after {wall:.0f} of {self.run_s:.0f} s")
        if thread_growth > THREAD_GROWTH:
            failures.append(f"threads grew by {thread_growth} (bound {THREAD_GROWTH})")
        if ended_by:
            failures.append(f"ended by {ended_by}")
        sim_hours = sim / 3600.0
        return {
            "schema": SCHEMA,
            "command": "waterrock " + " ".join(sys.argv[1:]),
            "scene": self.scene.name,
            "arch": self.solver.arch,
            "cores": os.cpu_count(),
            "hours": self.hours,
            "faults_injected": list(self.kinds),
            "wall_s": wall,
            "sim_s": sim,
            "acceleration": accel,
            "frames": self.loop.sim_frames,
            "warmup_s": self.warmup_s,
            "quiet_end_s": self.quiet_s,
            "faults": faults,
            "sent": dict(self.counts),
            "hangs": self.hangs,
            "crashes": len(self.errors),
            "crash_messages": self.errors[:20],
            "obstacle_provider_errors": self.inputs.obstacles.errors,
            "particles": {"active_start": b.active_start, "active_end": b.active, "emitted": b.emitted,
                          "retired": b.retired, "nonfinite": b.nonfinite, "lost": b.lost},
            "rss_mib": {"start": start_rss, "end": end_rss, "growth": rss_growth, "second_half_growth": late_growth,
                        "bound": RSS_GROWTH_MIB, "judged": rss_judged},
            "threads": {"start": start_threads, "end": end_threads, "growth": thread_growth, "bound": THREAD_GROWTH,
                        "python_start": self.start_py_threads, "python_end": python_threads()},
            "samples": {"every_s": max(1.0, self.run_s / SAMPLES), "t_s": [s[0] for s in self.samples],
                        "rss_mib": [round(s[1], 1) for s in self.samples], "threads": [s[2] for s in self.samples]},
            "tracker": tracker,
            "osc": osc,
            "goals": {
                "accelerated_hours": {"goal": GOALS["accelerated_hours"], "done": sim_hours,
                                      "wall_hours_needed": GOALS["accelerated_hours"] / accel if accel else None},
                "camera_loss": {"goal": GOALS["camera_loss"], "done": faults["camera_loss"]["injected"]},
                "malformed_packets": {"goal": GOALS["malformed_packets"], "done": self.counts["malformed_packets"]},
                "torn_write": {"goal": GOALS["torn_write"], "done": faults["torn_write"]["injected"]},
            },
            "ok": not failures,
            "failures": failures,
        }


def scene_copy(scene, folder: Path) -> Path:
    """The scene as a file in ``folder``, its rock where it was, its tracking the soak's: the
    synthetic visitors, OSC on a free port of 127.0.0.1, a calibration and a background beside it."""
    import tomlkit

    from waterrock.scene import read_scene_text

    if scene.path is None:
        raise ValueError("the soak needs a scene read from a file")
    data = read_scene_text(scene.path)
    if scene.rock.mesh is not None:
        data.setdefault("rock", {})["mesh"] = scene.rock.mesh.as_posix()
    data["tracking"] = {**data.get("tracking", {}), "source": "synthetic", "osc": True, "osc_host": "127.0.0.1",
                        "osc_port": 0, "calibration": "calibration.json", "background_file": "background.npz"}
    data["tracking"].pop("path", None)
    return files.write_text(folder / "scene.toml", tomlkit.dumps(data))


# --- one injector per kind: (soak, k-th of its kind) -> (detail, recovered) -------------------------


def _tracker_back(soak: Soak, fault: FrameFault) -> bool:
    """Whether the tracker processes a frame after ``fault`` took effect, within RECOVER_WITHIN."""
    return _wait(lambda: fault.taken is not None and soak.tracker().frames > fault.taken, RECOVER_WITHIN)


def camera_loss(soak: Soak, k: int):
    mode = ("raise", "end")[k % 2]
    return mode, _tracker_back(soak, soak.frame_faults.add(mode))


def frozen_frame(soak: Soak, k: int):
    return f"{soak.frame_faults.freeze_s:g} s", _tracker_back(soak, soak.frame_faults.add("freeze"))


def garbage_frame_fault(soak: Soak, k: int):
    kind = GARBAGE_FRAMES[k % len(GARBAGE_FRAMES)]
    skipped = soak.tracker().skipped
    back = _tracker_back(soak, soak.frame_faults.add(kind))
    return kind, back and soak.tracker().skipped > skipped  # skipped and counted, never a reopen


def osc_message(address: str, *args) -> bytes:
    from pythonosc.osc_message_builder import OscMessageBuilder

    m = OscMessageBuilder(address)
    for a in args:
        m.add_arg(a, "d" if isinstance(a, float) and abs(a) > 3e38 else None)  # beyond float32: a double
    return m.build().dgram


def osc_sphere(rng: np.random.Generator, oid: int) -> bytes:
    x, y, z = rng.uniform((-0.7, 0.1, -0.45), (0.7, 1.1, 0.45))
    return osc_message("/waterrock/obstacle", oid, float(x), float(y), float(z), float(rng.uniform(0.05, 0.15)))


def malformed_packet(rng: np.random.Generator, i: int) -> bytes:
    """The i-th of seven kinds of packet the listener must drop and count as malformed."""
    kind = i % 7
    if kind == 0:  # random bytes, not starting like an address or a bundle (those may be another's, passed over)
        data = rng.integers(0, 256, int(rng.integers(1, 256)), dtype=np.uint8).tobytes()
        return bytes([0x80 | data[0]]) + data[1:]
    if kind == 1:  # a TUIO set with too few values
        return osc_message("/tuio/2Dcur", "set", 5, 0.5)
    if kind == 2:
        return osc_message("/waterrock/obstacle", 1e300, 0.0, 0.5, 0.0, 0.2)
    if kind == 3:
        return osc_message("/waterrock/obstacle", 7, math.nan, 0.5, 0.0, 0.2)
    if kind == 4:
        return osc_message("/waterrock/capsule", 8, 0.0, 0.5, 0.0, "up", 1.0, 0.0, 0.1)
    if kind == 5:  # too few values
        return osc_message("/waterrock/obstacle", 9, 0.1)
    whole = osc_message("/waterrock/obstacle", 10, 0.0, 0.5, 0.0, 0.2)
    return whole[: len(whole) - 6]  # cut short


def tomorrow_bundle(rng: np.random.Generator) -> bytes:
    """A valid sphere in a bundle time-tagged a day ahead: to be applied now, not waited for."""
    from pythonosc.osc_bundle_builder import OscBundleBuilder

    bundle = OscBundleBuilder(time.time() + 86400.0)
    bundle.add_content(_sphere_message(rng))
    return bundle.build().dgram


def _sphere_message(rng: np.random.Generator):
    from pythonosc.osc_message import OscMessage

    return OscMessage(osc_sphere(rng, int(rng.integers(0, OSC_IDS))))


def _counted(soak: Soak, target: int) -> bool:
    """Whether the listener counts ``target`` packets or messages in all (OSC_WAIT at most)."""
    return _wait(lambda: soak.osc_total() >= target, OSC_WAIT)


def osc_garbage(soak: Soak, k: int):
    if soak.inputs.osc is None:
        return "no listener", False
    before = soak.osc_total()
    packets = [malformed_packet(soak.rng, k * OSC_GARBAGE_PACKETS + i) for i in range(OSC_GARBAGE_PACKETS)]
    packets.insert(int(soak.rng.integers(0, len(packets) + 1)), tomorrow_bundle(soak.rng))
    for p in packets:
        soak.send(p)
    soak.counts["malformed_packets"] += OSC_GARBAGE_PACKETS
    soak.counts["future_bundles"] += 1
    return f"{len(packets)} packets", _counted(soak, before + len(packets))


def osc_burst(soak: Soak, k: int):
    """Thousands of valid spheres at once, as single datagrams (some may be lost in the socket's
    buffer) or as bundles of 100 (most beyond the listener's rate); then it must still hear one more."""
    from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder

    if soak.inputs.osc is None:
        return "no listener", False
    before = soak.osc_total()
    if k % 2 == 0:
        for i in range(OSC_BURST_MESSAGES):
            soak.send(osc_sphere(soak.rng, i % OSC_IDS))
        detail = f"{OSC_BURST_MESSAGES} datagrams"
    else:
        for _ in range(OSC_BURST_MESSAGES // 100):
            bundle = OscBundleBuilder(IMMEDIATELY)
            for _ in range(100):
                bundle.add_content(_sphere_message(soak.rng))
            soak.send(bundle.build().dgram)
        detail = f"{OSC_BURST_MESSAGES // 100} bundles of 100"
    soak.counts["burst_messages"] += OSC_BURST_MESSAGES

    def settled() -> bool:  # nothing more counted for 0.3 s: the rest was lost in the socket's buffer
        now = soak.osc_total()
        time.sleep(0.3)
        return soak.osc_total() == now

    _wait(settled, OSC_WAIT, 0.0)
    soak.counts["burst_counted"] += soak.osc_total() - before
    probe = soak.osc_total()
    soak.send(osc_sphere(soak.rng, 0))
    return detail, _counted(soak, probe + 1)


def scene_edit(soak: Soak, k: int):
    """The projection saved from another thread (two at once every third time); the scene must
    then load, with one of the projections just saved, and no temporary file left behind."""
    from waterrock.scene import IDENTITY_CORNERS, ProjectionOutputs, ProjectorOutput, load_scene, save_projection

    written = []
    for _ in range(2 if k % 3 == 2 else 1):
        d = float(soak.rng.uniform(0.0, 0.05))
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = IDENTITY_CORNERS
        corners = ((x0 + d, y0 + d), (x1 - d, y1), (x2, y2 - d), (x3, y3))
        written.append(ProjectionOutputs(outputs=[ProjectorOutput(corners=corners)]))
    failed: list[str] = []

    def save(projection) -> None:
        try:
            save_projection(soak.scene_path, projection)
        except Exception as err:  # noqa: BLE001 - the app's failure: this edit is not recovered
            failed.append(f"{type(err).__name__}: {err}")

    threads = [threading.Thread(target=save, args=(p,), name="soak-scene-edit") for p in written]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30.0)
    try:
        loaded = load_scene(soak.scene_path, check_files=False).projection
    except Exception as err:  # noqa: BLE001 - an unloadable scene: not recovered
        failed.append(f"load: {type(err).__name__}: {err}")
        loaded = None
    leftovers = list(soak.folder.glob(f".{soak.scene_path.name}*.tmp"))
    detail = "; ".join([f"{len(written)} at once", *failed[:1], *([f"left {leftovers}"] if leftovers else [])])
    return detail, not failed and loaded in written and not leftovers


def torn_write(soak: Soak, k: int):
    """Half a calibration or background file (or none of it, or its length in zeros) written in place,
    as a writer cut off leaves it; the tracker reloads and must read it without stopping. The
    calibration is then written whole again (files.py); the tracker saves a background it relearned."""
    from waterrock.tracking.segment import DepthBackground

    path = soak.calibration_path if k % 2 == 0 else soak.background_path
    if path == soak.background_path:
        try:
            DepthBackground.load(path)
            soak.whole[path] = path.read_bytes()  # the last whole background the tracker saved
        except (OSError, ValueError):
            pass
        if path not in soak.whole:  # none learned yet
            path = soak.calibration_path
    whole, how = soak.whole[path], TORN[(k // 2) % len(TORN)]
    torn = {"half": whole[: len(whole) // 2], "empty": b"", "zeros": bytes(len(whole))}[how]
    with open(path, "wb") as f:  # in place, on purpose: what files.py never does
        f.write(torn)
    runner = soak.inputs.runner
    frames = soak.tracker().frames
    runner.reload()
    read = _wait(lambda: soak.tracker().frames > frames and runner.pipeline is not None, RECOVER_WITHIN)
    if path == soak.calibration_path:
        files.write_bytes(path, whole)
    return f"{path.name} {how}", read


def disk_full(soak: Soak, k: int):
    """The log file on a full disk: the app's own handler on /dev/full, DISK_FULL_LINES lines logged
    through it; every line must be lost quietly (one line on stderr), none raise."""
    from waterrock.app.logs import FILE_FORMAT, SeasonFileHandler

    if not Path("/dev/full").exists():
        return "no /dev/full", False
    handler = SeasonFileHandler("/dev/full", encoding="utf-8")  # maxBytes 0: it never rotates
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    root = logging.getLogger()
    soak_log = logging.getLogger("waterrock.soak.disk")
    soak_log.setLevel(logging.INFO)  # below the console's WARNING: these lines go to the full disk only
    root.addHandler(handler)
    try:
        for i in range(DISK_FULL_LINES):
            soak_log.info("soak: a line for a full disk, %d of %d", i + 1, DISK_FULL_LINES)
            time.sleep(0.1)
    finally:
        root.removeHandler(handler)
        handler.close()
    soak.counts["disk_lines_lost"] += handler.lost
    return f"{handler.lost} lines lost", handler.lost >= DISK_FULL_LINES


def sigstop(soak: Soak, k: int):
    pid = os.getpid()
    r = subprocess.run(["sh", "-c", f"kill -STOP {pid}; sleep {STOP_FOR}; kill -CONT {pid}"], timeout=60)
    return f"{STOP_FOR:g} s", r.returncode == 0


INJECTORS: dict[str, Callable[[Soak, int], tuple[str, bool]]] = {
    "camera_loss": camera_loss,
    "frozen_frame": frozen_frame,
    "garbage_frame": garbage_frame_fault,
    "osc_garbage": osc_garbage,
    "osc_burst": osc_burst,
    "scene_edit": scene_edit,
    "torn_write": torn_write,
    "disk_full": disk_full,
    "sigstop": sigstop,
}


# --- the table and the command ----------------------------------------------------------------------


def table(r: dict) -> str:
    acc = r["acceleration"]
    g = r["goals"]
    need = g["accelerated_hours"]["wall_hours_needed"]
    lines = [
        f"soak: scene {r['scene']!r} headless, not drawn, Taichi {r['arch']}, {r['cores']} cores; "
        + (f"faults: {', '.join(r['faults_injected']) if len(r['faults_injected']) < len(r['faults']) else 'all'}"
           if r["faults_injected"] else "faults: none"),
        f"wall {r['wall_s']:.0f} s, simulated {r['sim_s']:.0f} s: {acc:.2f}x real time; {r['frames']} frames "
        f"({r['frames'] / max(r['wall_s'], 1e-9):.0f} a second)",
        f"goal: {g['accelerated_hours']['goal']:g} accelerated hours "
        f"(done {g['accelerated_hours']['done']:.2f} h; at {acc:.2f}x they take "
        f"{f'{need:.1f} wall hours' if need else 'forever'}), {g['camera_loss']['goal']} camera losses "
        f"(done {g['camera_loss']['done']}), {g['malformed_packets']['goal']:,} malformed packets "
        f"(done {g['malformed_packets']['done']:,}), {g['torn_write']['goal']:,} torn writes "
        f"(done {g['torn_write']['done']:,})",
        "",
        f"{'fault':<15}{'season':>7}{'planned':>8}{'injected':>9}{'survived':>9}{'recovered':>10}  what",
    ]
    for name, f in r["faults"].items():
        lines.append(f"{name:<15}{f['season']:>7}{f['planned']:>8}{f['injected']:>9}{f['survived']:>9}"
                     f"{f['recovered']:>10}  {f['what']}")
        lines += [f"{'':<15}  not recovered: {x}" for x in f["not_recovered"]]
    p, m, t = r["particles"], r["rss_mib"], r["threads"]
    s = r["sent"]
    rss_bound = f"bound {m['bound']:g}" if m["judged"] else f"not judged under {RSS_JUDGED_FROM:.0f} s"
    lines += [
        "",
        f"particles: emitted {p['emitted']:,}, retired {p['retired']:,}, non-finite (NaN) {p['nonfinite']:,}, "
        f"active {p['active_start']:,} -> {p['active_end']:,}, lost {p['lost']:,}",
        f"memory: RSS {m['start']:.1f} MiB after the warm-up ({r['warmup_s']:.0f} s), {m['end']:.1f} MiB at the end "
        f"({m['growth']:+.1f} MiB; over the second half {m['second_half_growth']:+.1f} MiB, "
        f"{rss_bound}); "
        f"threads {t['start']} -> {t['end']} (bound +{t['bound']}; "
        f"Python's {t['python_start']} -> {t['python_end']})",
    ]
    sm = r["samples"]
    if sm["rss_mib"]:
        pick = np.linspace(0, len(sm["rss_mib"]) - 1, min(len(sm["rss_mib"]), 13)).round().astype(int)
        lines.append("RSS over the run (MiB): " + " ".join(f"{sm['rss_mib'][i]:.0f}@{sm['t_s'][i]:.0f}s" for i in pick)
                     + f"; threads {min(sm['threads'])}..{max(sm['threads'])}")
    tr = r["tracker"]
    lines.append(f"tracker: {tr['status']}, {tr['frames']:,} frames processed, {tr['skipped']:,} skipped, "
                 f"{tr['reconnects']:,} reconnects; last error: {tr['last_error']}")
    o = r["osc"]
    if o is not None:
        lines.append(f"OSC: {o['messages']:,} applied, {o['malformed']:,} malformed, {o['over_rate']:,} over the rate, "
                     f"{o['over_capacity']:,} over capacity, {o['refused']:,} refused; sent {s['malformed_packets']:,} "
                     f"malformed packets, {s['future_bundles']:,} bundles for tomorrow, {s['burst_messages']:,} burst "
                     f"messages ({s['burst_counted']:,} reached the listener)")
    lines.append(f"hangs {r['hangs']}, crashes {r['crashes']}, obstacle provider errors "
                 f"{r['obstacle_provider_errors']}, log lines lost to the full disk {s['disk_lines_lost']:,}")
    lines += [f"  crash: {c}" for c in r["crash_messages"]]
    lines.append("PASS" if r["ok"] else "FAIL: " + "; ".join(r["failures"]))
    return "\n".join(lines)


def fault_kinds(option: str | None) -> tuple[str, ...]:
    """--faults: none (None), every kind ('all'), or the kinds named, comma-separated."""
    if option is None:
        return ()
    names = [k.name for k in SEASON]
    if option == "all":
        return tuple(names)
    kinds = tuple(k.strip() for k in option.split(",") if k.strip())
    unknown = [k for k in kinds if k not in names]
    if unknown or not kinds:
        raise ValueError(f"--faults takes 'all' or kinds among {', '.join(names)}; "
                         f"not {', '.join(unknown) or repr(option)}")
    return kinds


def main(scene, args) -> int:
    """The soak command: 0 when it passed, 1 when not (see the module's doc)."""
    with tempfile.TemporaryDirectory(prefix="waterrock-soak-") as folder:
        soak = Soak(scene, Path(folder), args.arch, args.hours, fault_kinds(args.faults), args.seed, args.json)
        try:
            report = soak.run()
            soak.finish(report)
        finally:
            soak.close()
    return 0 if report["ok"] else 1
