"""Telling systemd how the installation is (sd_notify(3)): ready, alive, stopping.

The sample unit (docs/waterrock.service) is ``Type=notify`` with ``WatchdogSec``: the frame loop
says READY=1 once the first frame is shown and WATCHDOG=1 every second after, so a loop that
hangs (a driver, a deadlock) stops saying it and systemd kills and restarts the process, with
faulthandler's stack of every thread in the log. Outside systemd ($NOTIFY_SOCKET unset) every
call does nothing. The protocol is one datagram of ``KEY=VALUE`` lines to a Unix socket; a name
starting with '@' is in the abstract namespace.
"""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send ``state`` (e.g. "READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=...") to systemd.
    True when it was sent; False outside systemd or when the socket is gone (never raises: the
    water must not stop because the supervisor went away)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
        return True
    except OSError:
        return False


def watchdog_seconds() -> float | None:
    """The watchdog's period that systemd asked for ($WATCHDOG_USEC, for this process), or None."""
    usec, pid = os.environ.get("WATCHDOG_USEC"), os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1e6
    except ValueError:
        return None
