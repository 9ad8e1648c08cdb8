"""A warning that may come every frame, written at most once per interval with a count.

A broken cable can corrupt every frame at 30 fps, a tracker gone wrong can send thousands of bad
obstacles a frame, a sender can flood the OSC port: the log must stay readable for days. Used
where such a warning is raised (the tracker, the recorder, the OSC listener, the solver's
obstacles), so that a program using them as a library gets the same bound as the app, whose log
handlers also rate-limit every repeated cause (app/logs.RateLimit).
"""

from __future__ import annotations

import logging
import time


class RateLimitedLog:
    """Log at most one message per ``interval`` seconds, and say how many were held back."""

    def __init__(self, logger: logging.Logger, interval: float = 5.0, clock=time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._last = -float("inf")
        self._held = 0

    def warning(self, msg: str, *args) -> bool:
        now = self.clock()
        if now - self._last < self.interval:
            self._held += 1
            return False
        if self._held:
            msg = f"{msg} ({self._held} similar messages suppressed)"
        self._held = 0
        self._last = now
        self.logger.warning(msg, *args)
        return True
