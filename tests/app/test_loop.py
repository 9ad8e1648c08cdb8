"""The frame loop with a stand-in solver and a fake clock: the accumulator, the catch-up bound,
pause, reset, signals, and crashes logged with their cause."""

from __future__ import annotations

import logging
import os
import signal
from types import SimpleNamespace

import numpy as np
import pytest

from waterrock.app.loop import STAGES, FrameLoop, Obstacles, StageTimes
from waterrock.snapshots import ObstacleSnapshot, ParticleSnapshot


class FakeSolver:
    def __init__(self, frame_rate=60.0, on_step=None):
        self.scene = SimpleNamespace(solver=SimpleNamespace(frame_rate=frame_rate))
        self.time, self.frame, self.resets, self.obstacles = 0.0, 0, 0, []
        self.on_step = on_step

    def step(self, dt):
        self.time += dt
        self.frame += 1
        if self.on_step:
            self.on_step(self)
        return {"frame": self.frame, "substeps": 1, "max_speed": 0.0}

    def set_obstacles(self, snap):
        self.obstacles.append(len(snap))
        self.last_obstacles = snap

    def snapshot(self):
        z = np.zeros((3, 3), np.float32)
        return ParticleSnapshot(self.frame, self.time, z, z, np.arange(3, dtype=np.int32), np.zeros(3, bool))

    def reset(self):
        self.resets += 1
        self.time, self.frame = 0.0, 0

    def n_active(self):
        return 3


class FakeView:
    def __init__(self, fail_at=None):
        self.updates = self.renders = self.presents = self.clears = 0
        self.fail_at = fail_at

    def update(self, snapshot):
        self.updates += 1

    def render(self):
        self.renders += 1
        if self.fail_at is not None and self.renders >= self.fail_at:
            raise RuntimeError("the GPU went away")

    def present(self):
        self.presents += 1

    def clear_trails(self):
        self.clears += 1


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def make(frame_rate=60.0, max_catchup=2, view=None, **kw):
    clock = Clock()
    solver = FakeSolver(frame_rate)
    loop = FrameLoop(solver, None, view, max_catchup=max_catchup, clock=clock, sleep=lambda s: None, **kw)
    return loop, solver, clock


def test_fixed_rate_decoupled_from_display():
    loop, solver, clock = make(frame_rate=60.0)
    view = loop.view = FakeView()
    assert loop.tick() == 1  # the first frame shows something at once
    steps = []
    for _ in range(120):  # a 144 Hz display for 120 frames: 60 Hz simulation regardless
        clock.t += 1.0 / 144.0
        steps.append(loop.tick())
    assert sum(steps) == pytest.approx(120 * 60 / 144, abs=1)
    assert set(steps) <= {0, 1}
    assert view.renders == 121 and view.updates == 1 + sum(steps)  # every sim frame reaches the trails
    assert loop.dropped == 0


def test_slow_machine_drops_frames_instead_of_catching_up():
    loop, solver, clock = make(frame_rate=60.0, max_catchup=2)
    loop.tick()
    for _ in range(10):  # every displayed frame takes 100 ms: 6 simulation frames are due
        clock.t += 0.1
        assert loop.tick() == 2
    assert loop.sim_frames == 21
    assert loop.dropped == 40
    assert solver.time == pytest.approx(21 / 60)  # the water runs slower, with the same step


def test_a_long_stall_counts_as_a_short_one():
    loop, solver, clock = make(frame_rate=60.0, max_catchup=100)
    loop.tick()
    clock.t += 30.0  # e.g. the machine was suspended
    assert loop.tick() == round(0.25 * 60)


def test_pause_and_reset():
    loop, solver, clock = make(view=FakeView())
    loop.tick()
    loop.toggle_pause()
    for _ in range(5):
        clock.t += 0.05
        assert loop.tick() == 0
    assert loop.view.renders == 6  # still drawn while paused (the overlay, the last picture)
    loop.toggle_pause()
    clock.t += 1.0 / 60.0
    assert loop.tick() == 1  # no burst of frames owed from the pause
    loop.request_reset()
    loop.tick()
    assert solver.resets == 1 and loop.view.clears == 1


def test_not_realtime_steps_one_frame_per_tick():
    loop, solver, clock = make(realtime=False)
    for _ in range(5):
        assert loop.tick() == 1
    assert solver.frame == 5


def test_obstacles_feed_the_solver_and_a_broken_source_is_logged(caplog):
    class Broken:
        def latest(self):
            raise OSError("camera unplugged")

    good = ObstacleSnapshot.spheres([[0, 0.5, 0]], 0.1)
    loop, solver, _ = make(realtime=False)
    loop.obstacles = Obstacles([Broken(), lambda: good])
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            loop.tick()
    assert solver.obstacles == [1, 1, 1]  # the good source still arrives
    errors = [r for r in caplog.records if "Broken" in r.getMessage()]
    assert len(errors) == 1  # rate-limited
    assert "camera unplugged" in str(errors[0].exc_info[1])


def test_run_for_seconds_and_stage_times():
    loop, solver, clock = make(view=FakeView())

    def advance(_s):
        clock.t += 1.0 / 60.0

    solver.on_step = advance
    assert loop.run(seconds=1.0, handle_signals=False) == 0
    assert 55 <= solver.frame <= 65
    ms = loop.times.ms()
    assert set(ms) == set(STAGES)
    assert "particles 3" in loop.report()
    assert any("ms" in line for line in loop.overlay_lines())


def test_renderer_crash_is_logged_with_its_cause(caplog):
    loop, solver, _ = make(view=FakeView(fail_at=3), realtime=False)
    with caplog.at_level(logging.CRITICAL):
        assert loop.run(handle_signals=False) == 1
    assert isinstance(loop.error, RuntimeError)
    rec = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert rec and "the GPU went away" in rec[0].getMessage() and rec[0].exc_info is not None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_loop_cleanly(sig):
    loop, solver, _ = make(realtime=False)
    previous = signal.getsignal(sig)

    def send(s):
        if s.frame == 5:
            os.kill(os.getpid(), sig)

    solver.on_step = send
    assert loop.run() == 0
    assert 5 <= solver.frame <= 6
    assert signal.getsignal(sig) is previous  # handlers restored


def test_stage_times_rolling_average():
    t = StageTimes(window=2)
    for v in (0.001, 0.003, 0.005):
        t.add("solve", v)
        t.commit()
    assert t.ms()["solve"] == pytest.approx(4.0)


def test_on_a_slow_machine_the_visitors_fade_in_the_waters_time():
    """Each displayed frame takes 0.2 s and steps 2 frames of water: a visitor who appears at
    once grows in by GROWTH per second of water, not of the clock; offline (not real time), the
    visitors are handed over as they are."""
    from waterrock.app.girth import GROWTH

    def visitor():
        return ObstacleSnapshot.spheres([[0.0, 0.5, 0.0]], [0.2], velocities=[[1.0, 0.0, 0.0]], ids=[1])

    loop, solver, clock = make(frame_rate=60.0, max_catchup=2)
    loop.obstacles = Obstacles([visitor])
    sizes = []
    for _ in range(5):
        clock.t += 0.2
        loop.tick()
        sizes.append(float((solver.last_obstacles.radius * solver.last_obstacles.weight)[0]))
    assert sizes == pytest.approx([GROWTH / 60 * k for k in (1, 3, 5, 7, 9)], rel=1e-5)

    offline, solver, _ = make(realtime=False)
    offline.obstacles = Obstacles([visitor])
    offline.tick()
    assert solver.last_obstacles.weight[0] == 1.0
