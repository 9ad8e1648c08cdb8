"""Logging for the app: a short line on stderr, and optionally a rotating log file.

An installation runs for weeks: the file handler rotates (5 files of 10 MB by default), so the
disk never fills, and each line carries a timestamp and the thread that wrote it (the tracker
runs on its own thread). A warning that repeats (a bad visitor each frame, a camera that keeps
failing) is written once per ``RATE_INTERVAL`` seconds per cause, with a count of the ones left
out; a full disk is one line on stderr, then silence until the file can be written again. A
fatal error (a segfault in a driver, a hang that the watchdog ends) writes every thread's stack
into the log file through faulthandler.
"""

from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import sys
import time
from pathlib import Path

CONSOLE_FORMAT = "%(levelname)s %(name)s: %(message)s"
FILE_FORMAT = "%(asctime)s %(levelname)-7s [%(threadName)s] %(name)s: %(message)s"
RATE_INTERVAL = 10.0  # s between two lines of the same cause
_fault_file: list = [None]  # the stream faulthandler writes to: the log file, or None for stderr


def fault_stream():
    """Where a fatal error's stacks go: the log file when there is one, else stderr."""
    f = _fault_file[0]
    return f if f is not None and not f.closed else sys.stderr


class RateLimit(logging.Filter):
    """Lets through one record per cause (logger, level and message template, not its
    arguments) per ``interval`` seconds; the next one that passes says how many were left out.
    One instance serves every handler, and judges each record once, so the console and the file
    agree."""

    def __init__(self, interval: float = RATE_INTERVAL, clock=time.monotonic):
        super().__init__()
        self.interval, self.clock = interval, clock
        self._seen: dict[tuple, list] = {}  # cause -> [last time let through, left out since]

    def filter(self, record: logging.LogRecord) -> bool:
        verdict = getattr(record, "_waterrock_rate", None)
        if verdict is None:
            verdict = record._waterrock_rate = self._judge(record)  # type: ignore[attr-defined]
        return verdict

    def _judge(self, record: logging.LogRecord) -> bool:
        cause = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        seen = self._seen.get(cause)
        if seen is not None and now - seen[0] < self.interval:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            record.msg = f"{record.msg} [and {seen[1]} more like this in the last {now - seen[0]:.0f} s]"
        if len(self._seen) > 10_000:  # causes are message templates, so few; never grow without bound
            self._seen.clear()
        self._seen[cause] = [now, 0]
        return True


class SeasonFileHandler(logging.handlers.RotatingFileHandler):
    """The rotating log file, for a season unattended: a write that fails (a full disk) is one
    line on stderr, then silence until a write succeeds again, which logs how many were lost;
    faulthandler follows the file across rotations."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.failing, self.lost, self._failed_now = False, 0, False

    def emit(self, record: logging.LogRecord) -> None:
        self._failed_now = False
        super().emit(record)
        if self.failing and not self._failed_now:
            self.failing, lost, self.lost = False, self.lost, 0
            super().emit(logging.makeLogRecord({"name": "waterrock", "levelno": logging.WARNING,
                                                "levelname": "WARNING", "msg": f"the log file is writable again; "
                                                f"{lost} lines were lost while it was not"}))

    def handleError(self, record: logging.LogRecord) -> None:
        self._failed_now = True
        if not self.failing:
            err = sys.exc_info()[1]
            sys.stderr.write(f"waterrock: cannot write the log file {self.baseFilename}: {err}; "
                             f"silent there until it can\n")
        self.failing = True
        self.lost += 1

    def close(self) -> None:
        try:
            super().close()
        except OSError:  # the last flush onto a full disk: already said
            pass

    def doRollover(self) -> None:
        super().doRollover()
        if _fault_file[0] is not None and self.stream is not None:
            _fault_file[0] = self.stream
            faulthandler.enable(self.stream, all_threads=True)


def setup_logging(
    verbosity: int = 0,
    log_file: str | Path | None = None,
    max_bytes: int = 10 * 2**20,
    backups: int = 5,
) -> None:
    """Console at WARNING (default), INFO (-v) or DEBUG (-vv); the file, if any, at INFO or finer."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    root = logging.getLogger()
    for h in list(root.handlers):  # called once per CLI invocation; tests call main() repeatedly
        if getattr(h, "_waterrock", False):
            root.removeHandler(h)
            h.close()
    rate = RateLimit()
    console = logging.StreamHandler()
    console.setLevel(level)
    console.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    console.addFilter(rate)
    console._waterrock = True  # type: ignore[attr-defined]
    root.addHandler(console)
    file_level = min(level, logging.INFO)
    _fault_file[0] = None
    if log_file is not None:
        path = Path(log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = SeasonFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        fh.setLevel(file_level)
        fh.setFormatter(logging.Formatter(FILE_FORMAT))
        fh.addFilter(rate)
        fh._waterrock = True  # type: ignore[attr-defined]
        root.addHandler(fh)
        _fault_file[0] = fh.stream
    root.setLevel(file_level if log_file is not None else level)
    try:
        faulthandler.enable(fault_stream(), all_threads=True)
    except (AttributeError, ValueError, OSError):  # a stderr without a file descriptor (captured)
        pass
