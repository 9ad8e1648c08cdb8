"""Logging for the app: a short line on stderr, and optionally a rotating log file.

An installation runs for weeks: the file handler rotates (5 files of 10 MB by default), so the
disk never fills, and each line carries a timestamp and the thread that wrote it (the tracker
runs on its own thread).
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

CONSOLE_FORMAT = "%(levelname)s %(name)s: %(message)s"
FILE_FORMAT = "%(asctime)s %(levelname)-7s [%(threadName)s] %(name)s: %(message)s"


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
    console = logging.StreamHandler()
    console.setLevel(level)
    console.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    console._waterrock = True  # type: ignore[attr-defined]
    root.addHandler(console)
    file_level = min(level, logging.INFO)
    if log_file is not None:
        path = Path(log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        fh.setLevel(file_level)
        fh.setFormatter(logging.Formatter(FILE_FORMAT))
        fh._waterrock = True  # type: ignore[attr-defined]
        root.addHandler(fh)
    root.setLevel(file_level if log_file is not None else level)
