"""The frame-rate governor (app/governor.py): down after the scene's seconds below the target,
up only with headroom after its seconds and cooldown, never below the scene's minimum quality;
and, on a real loop with a real solver and renderer slowed down artificially, the displayed
rate back at the target within 5 s."""

from __future__ import annotations

import time

import pytest

from waterrock.app.governor import LEVELS, Governor
from waterrock.scene import GovernorSettings


def governor(**kw) -> tuple[Governor, list]:
    applied = []
    return Governor(GovernorSettings(**kw), 30.0, applied.append), applied


def test_down_after_its_seconds_below_the_target_and_never_below_the_minimum():
    g, applied = governor(min_scale=0.75, min_trails=0.75, min_water=1.0, down_after=2)
    assert [lv.scale for lv in g.levels] == [1.0, 0.75]  # only what the minimums allow
    g.update(20.0, 0, 40.0)
    assert applied == []  # one slow second is not enough (down_after = 2)
    g.update(20.0, 0, 40.0)
    assert applied == [LEVELS[1]] and g.index == 1
    for _ in range(10):
        g.update(5.0, 0.5, 200.0)
    assert g.index == 1 and len(applied) == 1  # the floor holds


def test_dropped_water_counts_as_slow_even_at_the_target_rate():
    g, applied = governor()  # down_after = 1
    g.update(30.0, 0.01, 20.0)  # one frame of water in a hundred: jitter
    assert g.index == 0
    g.update(30.0, 0.1, 20.0)
    assert g.index == 1


def test_up_only_with_headroom_after_its_seconds_and_the_cooldown():
    g, applied = governor(up_after=3, cooldown=6.0, down_after=2)
    for _ in range(2):
        g.update(10.0, 0, 90.0)
    assert g.index == 1
    for _ in range(4):  # at the target, but no headroom (the frame's work near its budget)
        g.update(30.0, 0, 30.0)
    assert g.index == 1
    for _ in range(2):  # headroom, but within the cooldown of the step down
        g.update(30.0, 0, 5.0)
    assert g.index == 1
    for _ in range(3):
        g.update(30.0, 0, 5.0)
    assert g.index == 0 and applied[-1] == LEVELS[0]


def test_a_band_that_would_hunt_is_refused():
    with pytest.raises(ValueError, match="hunt"):
        GovernorSettings(low=0.95, high=0.9)


class Slowed:
    """The real offscreen view, its drawing slowed as a fill-bound GPU's is: ``cost`` seconds a
    frame at full quality, in proportion to the pixels and the lines drawn."""

    def __init__(self, view, cost: float):
        self.view, self.cost, self.renderer = view, cost, view.renderer

    def update(self, snapshot):
        self.view.update(snapshot)

    def render(self):
        q = self.renderer.quality
        k = self.renderer.settings.trails.length
        time.sleep(self.cost * q.scale**2 * (0.5 + 0.5 * q.share * q.length / k))
        self.view.render()

    def present(self):
        pass

    def clear_trails(self):
        self.view.clear_trails()


@pytest.mark.timeout(180)
def test_a_slowed_loop_is_back_at_its_target_within_5_s(tiny_scene):
    from waterrock.app.loop import FrameLoop
    from waterrock.app.session import OffscreenView, open_governor
    from waterrock.scene import load_scene
    from waterrock.solver.solver import Solver

    scene = load_scene(str(tiny_scene))
    solver = Solver(scene, arch="cpu")
    view = OffscreenView(scene)
    try:
        # this machine's own frame (two frames of water, the picture), measured first; the
        # slowdown is four of them at full quality: about 5x slower, 2x at half scale
        solver.step(0.05)
        view.update(solver.snapshot())
        view.render()
        t0 = time.perf_counter()
        for _ in range(3):
            for _ in range(2):
                solver.step(0.05)
                view.update(solver.snapshot())
            view.render()
        base = (time.perf_counter() - t0) / 3
        target = 0.65 / (base + base)  # 65 % of what half scale gives: room for the water that builds up
        scene = scene.model_copy(update={
            "solver": scene.solver.model_copy(update={"frame_rate": 2 * target}),  # two frames of water a frame
            "governor": GovernorSettings(target_fps=target, min_scale=0.5, min_trails=0.5, min_water=0.75)})
        solver = Solver(scene, arch="cpu")
        governor = open_governor(scene, view.renderer, solver)
        loop = FrameLoop(solver, None, Slowed(view, cost=4 * base), governor=governor)
        loop.tick()  # kernels compiled before the clock starts
        start, seconds = loop.clock(), []  # (s since start, frames shown, level), once a second
        loop.run(seconds=8.0, every_second=lambda lp: seconds.append((lp.clock() - start, lp.frames_shown,
                                                                      governor.level)), handle_signals=False)
    finally:
        view.release()
    assert governor.steps >= 1
    levels = [lv for _, _, lv in seconds]
    assert all(lv.scale >= 0.5 and lv.trails >= 0.5 and lv.water >= 0.75 for lv in levels)  # the scene's minimum
    settled = next(t for t, _, lv in seconds if lv == governor.level)
    assert settled <= 5.0, f"settled after {settled:.1f} s: {seconds}"
    rates = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(seconds, seconds[1:], strict=False) if a[0] >= 5.0]
    assert rates and min(rates) >= 0.9 * target, f"target {target:.1f}: frames a second after 5 s {rates}; {seconds}"
