"""The app unattended: SIGTERM ends it whatever it is doing, systemd hears that it is alive, a
fatal error leaves its stacks in the log, and the log stays readable (repeats rate-limited, a
full disk one line)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.app.app_helpers import TINY_SCENE
from waterrock.app.logs import RateLimit, SeasonFileHandler, setup_logging

# A frame of about 10 s on two cores, far longer than the 5 s the test waits after SIGTERM, made
# of 40 substeps of about a quarter second: the signal's Python handler runs between two launches
# (a substep's graph is one), so the process ends within STOP_GRACE plus one substep.
SLOW_SCENE = """
name = "slow"
[domain]
lower = [0.0, 0.0, 0.0]
upper = [0.8, 0.8, 0.8]
[fluid]
particle_radius = 0.005
max_particles = 60000
[[fluid.blocks]]
lower = [0.0, 0.0, 0.0]
upper = [0.4, 0.2, 0.4]
[solver]
method = "pbf"
substeps = 40
max_substeps = 40
pbf_iterations = 12
[tracking]
source = "none"
"""


def _start(tmp_path, scene_text: str, *args: str, env: dict | None = None) -> tuple[subprocess.Popen, object]:
    scene = tmp_path / "scene.toml"
    scene.write_text(scene_text)
    log = tmp_path / "waterrock.log"
    proc = subprocess.Popen([sys.executable, "-m", "waterrock.app.cli", "--log-file", str(log), "run", "--scene",
                             str(scene), "--headless", "--arch", "cpu", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "DISPLAY": "", **(env or {})})
    return proc, log


def _wait_for(log, text: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} before {text!r}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"no {text!r} in the log within {timeout} s")


def test_sigterm_ends_the_process_within_two_seconds_even_inside_a_long_frame(tmp_path):
    proc, log = _start(tmp_path, SLOW_SCENE)
    try:
        _wait_for(log, "frame loop started", proc)  # its first frame is seconds long: this test is inside it
        # 0.2 s in, Taichi is compiling the substep's kernels: Python running on the main thread, whose
        # stack faulthandler alone once read as it changed, and the process died of SIGSEGV
        time.sleep(0.2)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)  # 2 s asked, with room for a loaded machine; the old loop finished the frame
        except subprocess.TimeoutExpired:
            pytest.fail("SIGTERM did not end the process within 5 s")
        took = time.monotonic() - sent
    finally:
        proc.kill()
        proc.communicate()
    text = log.read_text(errors="replace")
    assert "received SIGTERM" in text
    if proc.returncode == 1:  # cut short: faulthandler says where it was
        assert "Timeout" in text and "File " in text, text[-3000:]
    else:
        assert proc.returncode == 0, text[-3000:]
    print(f"SIGTERM to exit: {took:.2f} s (rc {proc.returncode})")


def test_systemd_hears_ready_watchdog_and_stopping(tmp_path):
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(0.2)
        proc, log = _start(tmp_path, TINY_SCENE, "--seconds", "3", env={"NOTIFY_SOCKET": str(path)})
        got = []
        end = time.monotonic() + 180
        while time.monotonic() < end and proc.poll() is None:
            try:
                got.append(sock.recv(4096).decode())
            except TimeoutError:
                pass
        while True:  # what arrived as it stopped
            try:
                got.append(sock.recv(4096).decode())
            except (TimeoutError, BlockingIOError):
                break
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert got and got[0].startswith("READY=1"), got
    assert sum(m == "WATCHDOG=1" for m in got) >= 2, got  # every second of a 3 s run
    assert got[-1] == "STOPPING=1", got


def _notices(sock: socket.socket, until: float) -> list[tuple[float, str]]:
    """What the app told systemd until ``until``, each with when it arrived."""
    got = []
    while time.monotonic() < until:
        try:
            got.append((time.monotonic(), sock.recv(4096).decode()))
        except TimeoutError:
            continue
    return got


def test_a_hung_process_stops_saying_it_is_alive_and_dies_of_the_watchdog_with_its_stacks(tmp_path):
    """systemd's WatchdogSec, played by this test: the app hangs (SIGSTOP, as a driver that never
    returns would stop it), its WATCHDOG=1 stop, and after the watchdog's seconds without one the
    supervisor kills it with SIGABRT, as systemd does, leaving every thread's stack in the log.
    Starting it again is systemd's Restart=on-failure (docs/waterrock.service); that a fresh start
    says READY=1 is test_systemd_hears_ready_watchdog_and_stopping's."""
    watchdog = 3.0
    path = tmp_path / "notify.sock"
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": str(int(watchdog * 1e6))}
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(0.2)
        proc, log = _start(tmp_path, TINY_SCENE, env=env)
        try:
            _wait_for(log, "first frame shown", proc)
            assert any(m == "WATCHDOG=1" for _, m in _notices(sock, time.monotonic() + 2.5))
            proc.send_signal(signal.SIGSTOP)  # hung
            hung_at = time.monotonic()
            silent = _notices(sock, hung_at + watchdog + 1.0)
            assert not any(m == "WATCHDOG=1" for t, m in silent if t > hung_at + 0.5), silent
            proc.send_signal(signal.SIGABRT)  # the watchdog's verdict
            proc.send_signal(signal.SIGCONT)  # a stopped process dies of it once it runs
            proc.wait(timeout=30)
            assert proc.returncode == -signal.SIGABRT
            assert "Fatal Python error: Aborted" in log.read_text(errors="replace")  # the stacks, for the operator
        finally:
            proc.kill()
            proc.communicate()


def test_a_fatal_error_leaves_every_threads_stack_in_the_log_file(tmp_path):
    proc, log = _start(tmp_path, TINY_SCENE)
    try:
        _wait_for(log, "first frame shown", proc)
        proc.send_signal(signal.SIGSEGV)  # as a driver's crash would
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGSEGV
    text = log.read_text(errors="replace")
    assert "Fatal Python error: Segmentation fault" in text and "most recent call first" in text, text[-3000:]


def test_a_repeated_warning_is_one_line_per_interval_with_a_count():
    clock = [0.0]
    rate = RateLimit(interval=10.0, clock=lambda: clock[0])
    records = []
    for i in range(1000):  # a bad visitor, every frame for 16 s
        clock[0] = i / 60
        r = logging.LogRecord("waterrock.tracking", logging.WARNING, __file__, 1, "bad obstacle %d", (i,), None)
        if rate.filter(r):
            records.append(r.getMessage())
    assert len(records) == 2, records
    assert records[0] == "bad obstacle 0"
    assert records[1].startswith("bad obstacle 600 [and 599 more like this in the last 10 s]")
    other = logging.LogRecord("waterrock.tracking", logging.WARNING, __file__, 1, "camera lost", (), None)
    assert rate.filter(other)  # another cause is not held back


def test_a_full_disk_is_one_line_then_silence(tmp_path, capfd):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    root = logging.getLogger()
    try:
        setup_logging(0, "/dev/full")
        for i in range(200):
            logging.getLogger(f"waterrock.cause{i}").warning("something %d", i)
    finally:
        setup_logging(0, None)
    err = [ln for ln in capfd.readouterr().err.splitlines() if "/dev/full" in ln]
    assert len(err) == 1 and "No space left on device" in err[0] and "silent" in err[0], err
    assert not any(isinstance(h, SeasonFileHandler) for h in root.handlers)
