"""A warning that may come every frame, written at most once per interval with a count.

A broken cable can corrupt every frame at 30 fps, a tracker gone wrong can send thousands of bad
obstacles a frame, a sender can flood the OSC port, a portal's peer can vanish for an hour: the
log must stay readable for days. Used where such a warning is raised (the tracker, the recorder,
the OSC listeners, the solver's obstacles, the portals and the render nodes), so that a program
using them as a library gets the same bound as the app, whose log handlers also rate-limit every
repeated cause (app/logs.RateLimit).
"""

from __future__ import annotations

import logging
import math
import time


class RateLimitedLog:
    """Log at most one message per cause every ``interval`` seconds, and say how many were held
    back. ``warning(msg)`` is one cause; ``say(level, key, msg)`` keeps one per ``key``."""

    def __init__(self, logger: logging.Logger, interval: float = 5.0, clock=time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._seen: dict[str, list] = {}  # key -> [last time written, held back since]

    def say(self, level: int, key: str, msg: str, *args) -> bool:
        now = self.clock()
        seen = self._seen.setdefault(key, [-math.inf, 0])
        if now - seen[0] < self.interval:
            seen[1] += 1
            return False
        if seen[1]:
            msg = f"{msg} ({seen[1]} similar messages suppressed)"
        seen[:] = [now, 0]
        self.logger.log(level, msg, *args)
        return True

    def warning(self, msg: str, *args) -> bool:
        return self.say(logging.WARNING, "", msg, *args)
