"""The frame-rate governor: the scene's target rate held on whatever machine runs it.

A machine too slow for the scene showed 6 frames a second with the water at a fifth of real
time (2 cores, software GL). Once a second the governor reads the last second's displayed rate
and the share of its water the loop dropped (the water falling behind the clock), and steps
through the levels of :data:`LEVELS`, cheapest loss first: the render scale (fewer pixels for
the lines' light, upsampled), then the trails' length and share, then the water (the emitters'
rate, so fewer particles over the next seconds). It steps down after ``down_after`` seconds
below the target, and up only after ``up_after`` seconds with headroom (the frame's work under
``headroom`` of its budget at the target rate) and not within ``cooldown`` seconds of a step
down: hysteresis, so it does not hunt between two levels. Never below the scene's minimum
quality (``[governor] min_scale``, ``min_trails``, ``min_water``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

BEHIND = 0.05  # of a second's water dropped: the water is behind the clock (one frame in 60 is jitter)


@dataclass(frozen=True)
class Level:
    scale: float = 1.0  # of the picture's pixels each way
    trails: float = 1.0  # of the trails' length, and of their share
    water: float = 1.0  # of the emitters' rate

    def describe(self) -> str:
        return f"scale {self.scale:.2f}, trails {self.trails:.2f}, water {self.water:.2f}"


LEVELS = (
    Level(),
    Level(scale=0.75),
    Level(scale=0.5),
    Level(scale=0.5, trails=0.75),
    Level(scale=0.5, trails=0.5),
    Level(scale=0.5, trails=0.5, water=0.75),
    Level(scale=0.5, trails=0.5, water=0.5),
)


class Governor:
    """Steps ``apply(level)`` down and up the levels the scene allows, from ``update(fps,
    dropped, busy_ms)`` once a second."""

    def __init__(self, settings, target_fps: float, apply):
        self.settings = settings
        self.target = float(target_fps)
        self.apply = apply
        self.levels = [lv for lv in LEVELS if lv.scale >= settings.min_scale and lv.trails >= settings.min_trails
                       and lv.water >= settings.min_water]
        self.index = 0
        self.low = self.high = 0  # consecutive seconds below the target / with headroom
        self.since_down = float("inf")  # seconds since the last step down
        self.steps = 0

    @property
    def level(self) -> Level:
        return self.levels[self.index]

    def update(self, fps: float, behind: float, busy_ms: float) -> None:
        """One second's figures: displayed frames a second, the share of the second's water the
        loop dropped (the water behind the clock), and the mean milliseconds of work (every stage)
        a displayed frame."""
        s = self.settings
        self.since_down += 1.0
        slow = fps < s.low * self.target or behind > BEHIND
        room = fps >= s.high * self.target and behind == 0 and busy_ms < s.headroom * 1e3 / self.target
        self.low = self.low + 1 if slow else 0
        self.high = self.high + 1 if room else 0
        if self.low >= s.down_after and self.index + 1 < len(self.levels):
            self._go(self.index + 1, f"{fps:.1f} fps, {behind:.0%} of the water dropped")
            self.since_down = 0.0
        elif self.high >= s.up_after and self.index > 0 and self.since_down >= s.cooldown:
            self._go(self.index - 1, f"{fps:.1f} fps, {busy_ms:.1f} ms of work a frame")

    def _go(self, index: int, why: str) -> None:
        down = index > self.index
        self.index, self.low, self.high = index, 0, 0
        self.steps += 1
        self.apply(self.level)
        # one template per level: the log's rate limit holds back repeats of a template, and every
        # step is worth its line
        log.info(f"frame-rate governor: to level {index} ({self.level.describe()}), %s from %s (target %.0f fps)",
                 "down" if down else "up", why, self.target)

    def describe(self) -> str:
        return f"governor: level {self.index}/{len(self.levels) - 1} ({self.level.describe()})"
