"""A mouse or a touch as a visitor: the cursor becomes an obstacle that moves the water.

The installation window passes its own inverse view mapping (window pixel -> scene point on a
plane); this class only keeps the cursor's position and velocity and shapes the obstacle.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from waterrock.snapshots import ObstacleSnapshot

VIRTUAL_IDS = 5_000_000  # never shared with camera or network obstacles

IDLE = 0.1  # s without a move event: the cursor is standing still, whatever its last velocity was


class VirtualVisitor:
    """A sphere (``height = 0``) or a standing capsule that follows the cursor.

    ``smoothing`` in (0, 1] is the share of each new velocity sample taken: 1 answers at once
    (jittery with a trackpad), lower is calmer. A released cursor fades out over ``fade_time``.
    """

    def __init__(
        self,
        pixel_to_world: Callable[[float, float], np.ndarray],
        radius: float = 0.15,
        height: float = 0.0,
        obstacle_id: int = VIRTUAL_IDS,
        smoothing: float = 0.6,
        fade_time: float = 0.3,
        max_speed: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < smoothing <= 1:
            raise ValueError("smoothing must be in (0, 1]")
        self.pixel_to_world = pixel_to_world
        self.radius, self.height, self.id = radius, height, obstacle_id
        self.smoothing, self.fade_time, self.max_speed = smoothing, fade_time, max_speed
        self._clock = clock
        self.position: np.ndarray | None = None
        self.velocity = np.zeros(3)
        self._t = 0.0
        self.pressed = False
        self._released_at: float | None = None

    def press(self, x: float, y: float, t: float | None = None) -> None:
        self.pressed, self._released_at = True, None
        self.position, self.velocity = None, np.zeros(3)  # a new touch: no velocity from the old one
        self.move(x, y, t)

    def move(self, x: float, y: float, t: float | None = None) -> None:
        t = self._clock() if t is None else t
        p = np.asarray(self.pixel_to_world(x, y), np.float64).reshape(3)
        if not np.all(np.isfinite(p)):
            return  # the cursor points past the plane (at the sky): keep the last position
        if self.position is not None and t > self._t:
            raw = (p - self.position) / (t - self._t)
            speed = np.linalg.norm(raw)
            if speed > self.max_speed:  # a jump (window refocus, second screen) is not a throw
                raw *= self.max_speed / speed
            idle = t - self._t > IDLE
            base = np.zeros(3) if idle else self.velocity
            self.velocity = base + self.smoothing * (raw - base)
        self.position, self._t = p, t

    def release(self, t: float | None = None) -> None:
        self.pressed = False
        self._released_at = self._clock() if t is None else t

    def snapshot(self, now: float | None = None) -> ObstacleSnapshot:
        now = self._clock() if now is None else now
        if self.position is None:
            return ObstacleSnapshot.empty(now)
        weight = 1.0
        if not self.pressed:
            if self._released_at is None:
                return ObstacleSnapshot.empty(now)
            weight = 1.0 - (now - self._released_at) / self.fade_time
            if weight <= 0:
                return ObstacleSnapshot.empty(now)
        v = self.velocity if now - self._t <= IDLE else np.zeros(3)
        a = self.position
        b = a + [0.0, self.height, 0.0] if self.height > 0 else a
        return ObstacleSnapshot.capsules([a], [b], self.radius, [v], [self.id], now, [weight])
