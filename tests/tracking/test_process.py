"""The tracker in a process of its own: obstacles through shared memory, restarts, no waiting."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time
from multiprocessing import shared_memory

import numpy as np
import pytest

from waterrock.snapshots import ObstacleSnapshot
from waterrock.tracking.process import Board, TrackerProcess
from waterrock.tracking.settings import TrackingSettings

SMALL = {"source": "synthetic", "synthetic_script": "walk", "width": 320, "height": 240, "fps": 15}


def wait_for(cond, timeout: float, step: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(step)
    return cond()


def test_obstacles_and_picture_cross_from_the_child():
    with TrackerProcess(TrackingSettings(**SMALL)) as tp:
        assert tp.pid != os.getpid()
        snap = wait_for(lambda: len(tp.latest()) and tp.latest(), 60.0)
        assert snap, f"no obstacles from the tracker process: {tp.state()}"
        assert np.all(np.abs(snap.a[:, [0, 2]]) < 5.0) and np.all(snap.radius > 0.05)
        assert np.all(snap.ids > 0)
        st = tp.state()
        assert st.status in ("running", "stalled") and st.frames > 0 and st.source.startswith("synthetic")
        frame, mask = wait_for(lambda: (tp.latest_picture() or (None, None))[1] is not None and tp.latest_picture(),
                               5.0)
        assert frame.depth is not None and frame.depth.shape == (240, 320)
        assert mask is not None and mask.any()
    assert tp.state().status == "stopped"
    with pytest.raises(FileNotFoundError):  # the block is gone with the tracker
        shared_memory.SharedMemory(tp._shm.name)


def test_killed_child_is_restarted_and_the_water_never_waits():
    s = TrackingSettings(**SMALL, stall_timeout=0.2, fade_time=0.3)
    with TrackerProcess(s) as tp:
        assert wait_for(lambda: len(tp.latest()), 60.0), tp.state()
        first = tp.pid
        os.kill(first, signal.SIGKILL)
        slowest, statuses = 0.0, set()
        end = time.monotonic() + 60.0
        while time.monotonic() < end:
            t = time.perf_counter()
            snap = tp.latest()
            slowest = max(slowest, time.perf_counter() - t)
            statuses.add(tp.state().status)
            if tp.pid != first and tp.state().status == "running" and len(snap):
                break
            time.sleep(0.01)
        assert tp.pid != first and tp.restarts == 1, tp.state()
        assert "dead" in statuses, statuses
        assert len(tp.latest()), "no obstacles after the restart"
        # latest() only copies from shared memory: tens of microseconds, never the restart's seconds
        assert slowest < 0.1, f"latest() took {slowest * 1000:.0f} ms while the child was dead"


def test_obstacles_fade_while_the_child_is_dead():
    s = TrackingSettings(**SMALL, stall_timeout=0.2, fade_time=0.3)
    with TrackerProcess(s) as tp:
        assert wait_for(lambda: len(tp.latest()), 60.0), tp.state()
        os.kill(tp.pid, signal.SIGSTOP)  # hung: no frames, no heartbeat; the first second decides
        try:
            t0 = time.monotonic()
            weights = []
            while time.monotonic() - t0 < 0.45:
                snap = tp.latest()
                weights.append(float(snap.weight.max()) if len(snap) else 0.0)
                time.sleep(0.02)
            assert weights[0] > 0.9 and 0.0 < min(w for w in weights if w > 0) < 0.9
            assert wait_for(lambda: not len(tp.latest()), 1.0), "obstacles of a hung tracker never faded out"
        finally:
            os.kill(tp._proc.pid, signal.SIGCONT)


def test_hung_child_is_killed_after_its_heartbeat_stops():
    s = TrackingSettings(**SMALL, process_timeout=1.0)
    with TrackerProcess(s) as tp:
        assert wait_for(lambda: tp.state().status == "running", 60.0), tp.state()
        first = tp.pid
        os.kill(first, signal.SIGSTOP)
        assert wait_for(lambda: tp.state().status == "dead", 3.0)
        assert wait_for(lambda: tp.pid != first, 5.0), "a hung tracker process was never replaced"
        assert wait_for(lambda: tp.state().status == "running", 60.0), tp.state()


def test_child_leaves_with_its_parent(tmp_path):
    """A frame loop killed outright (SIGKILL, no cleanup) leaves no tracker process behind."""
    script = textwrap.dedent(
        f"""
        import time
        from waterrock.tracking.process import TrackerProcess
        from waterrock.tracking.settings import TrackingSettings
        if __name__ == "__main__":
            tp = TrackerProcess(TrackingSettings(**{SMALL!r})).start()
            while tp.state().status != "running":
                time.sleep(0.05)
            print(tp.pid, flush=True)
            time.sleep(600)
        """
    )
    path = tmp_path / "parent.py"
    path.write_text(script)
    parent = subprocess.Popen([sys.executable, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait()

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{child}/stat") as f:  # a zombie waiting for init to reap it is gone too
            return f.read().split(") ")[1].startswith("Z")

    assert wait_for(gone, 5.0), "the tracker process outlived its parent"


def _writer(name: str, rounds: int) -> None:
    shm = shared_memory.SharedMemory(name)
    board = Board(shm.buf)
    for k in range(1, rounds + 1):
        m = 1 + k % 40
        v = np.full((m, 3), float(k), np.float32)
        board.write_obstacles(ObstacleSnapshot(float(k), v, v, np.full(m, k, np.float32), v, np.full(m, k),
                                               np.ones(m, np.float32)), float(k), float(k))
    del board
    shm.close()


def test_a_read_never_sees_half_a_write():
    """The seqlock: a reader racing a writer in another process gets whole snapshots only."""
    shm = shared_memory.SharedMemory(create=True, size=Board.size())
    try:
        board = Board(shm.buf)
        board.ints[:] = 0
        writer = mp.get_context("spawn").Process(target=_writer, args=(shm.name, 20000))
        writer.start()
        reads = 0
        while writer.is_alive() or reads == 0:
            got = board.obstacles()
            if got is None:
                continue
            snap, arrived, published = got
            if not len(snap):
                continue
            k = snap.timestamp
            assert len(snap) == 1 + int(k) % 40 and arrived == published == k
            assert np.all(snap.a == k) and np.all(snap.b == k) and np.all(snap.velocity == k)
            assert np.all(snap.radius == k) and np.all(snap.ids == int(k))
            reads += 1
        writer.join()
        assert writer.exitcode == 0 and reads > 100
        del board
    finally:
        shm.close()
        shm.unlink()
