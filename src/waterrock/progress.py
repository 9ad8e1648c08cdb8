"""Progress of long work (the rock's SDF, a render, a recording, a benchmark) for whoever waits.

On a terminal, a rich progress bar on stderr; when stderr is a log (a file, a pipe, systemd's
journal), a plain line on stderr at most every few seconds, and one at the end, so a log shows
that a long start is alive without filling up with bars.

    with progress("rock SDF 256³", total=n) as advance:
        for chunk in chunks:
            ...
            advance(len(chunk))
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LOG_EVERY_S = 5.0


def _terminal() -> bool:
    stream = sys.stderr
    return bool(getattr(stream, "isatty", None) and stream.isatty())


@contextmanager
def progress(description: str, total: float | None, unit: str = "", log_every: float = LOG_EVERY_S,
             terminal: bool | None = None, enabled: bool = True) -> Iterator[Callable[[float], None]]:
    """Yield ``advance(amount)``; show how far along ``total`` the work is.

    ``total`` None: the work's size is unknown (a recording until Ctrl-C), so only the amount
    done is shown. ``terminal`` overrides the check of stderr (for tests); ``enabled`` False
    shows nothing (a library call that its caller keeps quiet).
    """
    if not enabled:
        yield lambda amount=1.0: None
        return
    done = 0.0
    start = last = time.monotonic()
    on_terminal = _terminal() if terminal is None else terminal

    def _line(final: bool) -> str:
        elapsed = time.monotonic() - start
        amount = f"{done:,.0f}{unit}"
        if total is not None:
            amount = f"{done:,.0f}/{total:,.0f}{unit} ({done / max(total, 1e-12):.0%})"
        return f"{description}: {amount}, {elapsed:.1f} s{' (done)' if final else ''}"

    if on_terminal:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
            task = bar.add_task(description, total=total)

            def advance(amount: float = 1.0) -> None:
                nonlocal done
                done += amount
                bar.advance(task, amount)

            yield advance
        return

    def advance(amount: float = 1.0) -> None:
        nonlocal done, last
        done += amount
        now = time.monotonic()
        if now - last >= log_every:
            last = now
            print(f"waterrock: {_line(final=False)}", file=sys.stderr, flush=True)

    yield advance
    if time.monotonic() - start >= log_every:  # short work says nothing; long work says it ended
        print(f"waterrock: {_line(final=True)}", file=sys.stderr, flush=True)
