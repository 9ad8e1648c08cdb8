"""The status page (app/status.py, issue 25 item 2): the app run as an operator runs it, its page
read with urllib and in headless Chromium, its figures checked against the app's own per-second
report; a port that is taken, and requests that are garbage. Then, in this process and without
Taichi: the figures of a frame loop, the warnings, and the thumbnail against the picture."""

from __future__ import annotations

import json
import logging
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from tests.app.app_helpers import TINY_SCENE
from tests.net.test_portals import free_port
from waterrock.app.loop import STAGES, FrameLoop
from waterrock.scene import load_scene
from waterrock.snapshots import ParticleSnapshot

HOST = "127.0.0.1"
# the report line the headless run prints each second (session.run_headless, FrameLoop.report)
REPORT = re.compile(r"fps\s+(?P<fps>[\d.]+) sim (?P<sim>\d+) frames \(dropped (?P<dropped>\d+)\).*"
                    r"\| particles (?P<particles>\d+)")
# Chromium kept off every network but 127.0.0.1: no updates, no sync, no metrics, no first-run pages
CHROMIUM_FLAGS = ["--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--metrics-recording-only",
                  "--no-default-browser-check", "--disable-default-apps", "--disable-extensions",
                  "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--no-pings",
                  "--hide-scrollbars"]


def scene_text(status_port: int) -> str:
    # OSC control off: this file tests the status page alone
    return TINY_SCENE + f"\n[console]\nstatus_port = {status_port}\nosc_port = 0\n"


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()


def figures(port: int) -> dict:
    status, kind, body = get(port, "/status.json")
    assert status == 200 and kind == "application/json"
    return json.loads(body)


def raw(port: int, request: bytes) -> bytes:
    """What the server answers ``request`` sent as is, then the sending side closed."""
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except ConnectionResetError:  # the server closed with some of a long request unread
            return answer or b"reset"
        return answer


class App:
    """``waterrock run --headless`` in a subprocess, its stdout's report lines collected as they come."""

    def __init__(self, scene_path, seconds: float | None = None):
        args = [sys.executable, "-m", "waterrock.app.cli", "run", "--headless", "--scene", str(scene_path)]
        if seconds is not None:
            args += ["--seconds", str(seconds)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.stderr = ""
        self._out = threading.Thread(target=self._read, daemon=True)
        self._out.start()
        self._err = threading.Thread(target=self._read_err, daemon=True)
        self._err.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def _read_err(self) -> None:
        self.stderr = self.proc.stderr.read()

    def report_for(self, sim_frames: int, timeout: float = 10.0) -> re.Match:
        """The report line of the second whose figures say ``sim_frames``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = REPORT.search(line)
                if m and int(m["sim"]) == sim_frames:
                    return m
            time.sleep(0.05)
        raise AssertionError(f"no report line with sim {sim_frames} frames in:\n" + "\n".join(self.lines))

    def finish(self, timeout: float = 30.0) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._out.join(5)
        self._err.join(5)
        return rc


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app with its status page, running until the module's tests are done (then SIGTERM, as
    systemd stops it); beside it, started at once to share the start-up's time, a second app whose
    status port is taken."""
    folder = tmp_path_factory.mktemp("status")
    port = free_port()
    (folder / "scene.toml").write_text(scene_text(port), encoding="utf-8")
    holder = socket.socket()
    holder.bind((HOST, 0))
    holder.listen()
    taken = holder.getsockname()[1]
    (folder / "taken.toml").write_text(scene_text(taken), encoding="utf-8")
    running = App(folder / "scene.toml")
    blocked = App(folder / "taken.toml", seconds=1.0)
    try:
        deadline = time.monotonic() + 90
        while True:  # kernel compilation first (seconds); the page answers from the start
            assert running.proc.poll() is None, f"the app ended: {running.stderr}"
            assert time.monotonic() < deadline, "no figures from the status page in 90 s"
            try:
                if "fps" in figures(port):
                    break
            except (OSError, AssertionError):
                pass
            time.sleep(0.2)
        yield SimpleNamespace(port=port, running=running, blocked=blocked, folder=folder)
    finally:
        running.proc.terminate()
        rc = running.finish()
        blocked.finish()
        holder.close()
    assert rc == 0, f"the app did not end cleanly on SIGTERM (rc {rc}): {running.stderr[-2000:]}"


def test_figures_match_the_apps_report(app):
    first = figures(app.port)
    assert first["app"] == "waterrock" and first["scene"] == "tiny_waterfall" and first["state"] == "running"
    line = app.running.report_for(first["sim_frames"])  # printed in the same second, after the figures
    assert first["fps"] == pytest.approx(float(line["fps"]), abs=0.06)
    assert first["particles"] == int(line["particles"]) and first["dropped"] == int(line["dropped"])
    assert 500 < first["particles"] <= 1500  # the tiny scene's budget, mostly in use
    assert first["fps"] > 1 and first["frame_ms"] > 0 and set(STAGES) <= set(first["stages_ms"])
    assert first["frame_ms"] == pytest.approx(sum(first["stages_ms"].values()), abs=0.01)
    assert first["tracker"]["line"] == "tracker: none" and first["tracker"]["camera_fps"] is None
    assert first["memory"]["rss_mib"] > 50 and first["memory"]["peak_rss_mib"] >= first["memory"]["rss_mib"]
    assert 0 < first["uptime_s"] < 600 and first["age_s"] < 5
    assert first["sim_rate_hz"] == 30.0 and first["governor"] is None and first["portals"] == []
    time.sleep(1.2)
    second = figures(app.port)
    assert second["time"] > first["time"] and second["uptime_s"] > first["uptime_s"]
    assert second["frames_shown"] > first["frames_shown"] and second["sim_frames"] > first["sim_frames"]
    assert second["sim_time_s"] > first["sim_time_s"]
    cost = second["status_page"]
    assert cost["ms_per_frame"] is not None and cost["on_second_ms"] > 0  # measured, not asserted: see docs


def test_thumbnail_is_the_output(app):
    deadline = time.monotonic() + 10
    while True:  # none is made until someone asks: this one asks, and the next second makes it
        status, kind, body = get(app.port, "/thumbnail.jpg?t=1")
        if status != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert status == 200 and kind == "image/jpeg"
    picture = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (240, 320, 3)  # the tiny scene's 320x240 output, whole
    background = np.array([0.010, 0.028, 0.070])[::-1] * 255  # BGR
    lit = np.abs(picture.astype(float) - background).max(axis=2) > 40
    assert 0.01 < lit.mean() < 0.6, "the thumbnail shows no water lines"
    deadline = time.monotonic() + 5
    while (made := figures(app.port)["thumbnail"]) is None and time.monotonic() < deadline:
        time.sleep(0.3)  # the figures of the second after it was made say so
    assert made["width"] == 320 and made["height"] == 240 and made["time"] > time.time() - 30


def test_not_found_and_bad_requests(app):
    assert get(app.port, "/nothing/here")[0] == 404
    assert get(app.port, "/status.json/..")[0] == 404
    garbage = b"\x00\xff\xfe \x01" * 200 + b"\r\n\r\n"
    assert b"Error code: 400" in raw(app.port, b"GARBAGE\r\n\r\n")  # HTTP/0.9's answer: no status line
    assert b"Error code: 400" in raw(app.port, garbage)
    long_path = raw(app.port, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n")
    assert long_path.startswith(b"HTTP/1.0 414") or long_path == b"reset"
    assert raw(app.port, b"POST /status.json HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 501")
    raw(app.port, b"GET / HTTP/1.1\r\nHost")  # the client gone mid-request
    for _ in range(40):  # connections opened and dropped unanswered, more than the server serves at once
        socket.create_connection((HOST, app.port), timeout=5).close()
    assert app.running.proc.poll() is None
    assert "fps" in figures(app.port)  # the server still answers


def test_a_taken_port_is_a_warning_and_the_app_runs_on(app):
    rc = app.blocked.finish()
    assert rc == 0, app.blocked.stderr[-2000:]
    assert re.search(r"WARNING .*status page not started \(OSError: .*\): the water runs on", app.blocked.stderr)
    assert any(REPORT.search(line) for line in app.blocked.lines), "no report line: the water did not run"


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium binary (apt-get install chromium; CI's .ci/run installs it)")
    return path


def test_page_in_chromium(app, tmp_path):
    """The page in a real browser: its script fetched the figures and put them in the table."""
    binary = chromium()
    url = f"http://{HOST}:{app.port}/"
    common = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000"]
    seconds: dict[int, dict] = {}  # every second's figures while the browser reads them, by frames shown
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            s = figures(app.port)
            seconds[s["frames_shown"]] = s
            done.wait(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=60)
    finally:
        done.set()
        watcher.join(5)
    last = figures(app.port)  # the page's last second, if it came after the watcher's last look
    seconds[last["frames_shown"]] = last
    assert dom.returncode == 0, dom.stderr[-2000:]

    def cell(name: str) -> str:
        m = re.search(rf'id="{name}"[^>]*>([^<]*)<', dom.stdout)
        assert m, f"no element {name} in the page:\n{dom.stdout[:3000]}"
        return m.group(1)

    assert cell("state") == "running" and cell("scene") == "tiny_waterfall"
    shown = seconds.get(int(cell("frames_shown")))  # the second the page showed last
    assert shown is not None, f"the page shows {cell('frames_shown')} frames; the seconds read: {sorted(seconds)}"
    assert float(cell("fps")) == pytest.approx(shown["fps"], abs=0.051)  # as the page rounds it
    assert int(cell("particles")) == shown["particles"] and int(cell("sim_frames")) == shown["sim_frames"]
    assert int(cell("dropped")) == shown["dropped"]
    assert float(cell("frame_ms")) == pytest.approx(shown["frame_ms"], abs=0.051)
    assert float(cell("stage-solve")) == pytest.approx(shown["stages_ms"]["solve"], abs=0.051)
    assert float(cell("memory")) == pytest.approx(shown["memory"]["rss_mib"], abs=0.51)
    assert cell("tracker") == "tracker: none" and cell("camera_fps") == "no camera"
    img = re.search(r'<img id="thumbnail"[^>]*>', dom.stdout).group(0)
    assert 'src="/thumbnail.jpg?t=' in img and "hidden" not in img

    shot = tmp_path / "page.png"
    run = subprocess.run([*common, "--window-size=700,900", f"--screenshot={shot}", url],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    picture = cv2.imread(str(shot))
    assert picture.shape[:2] == (900, 700)
    assert picture.std() > 10  # text, a table and a thumbnail on the page's dark ground
    thumbnail = picture[50:300, 10:340].astype(int)  # where the page puts it, under the heading
    page_ground = np.array([0x20, 0x14, 0x0B])  # #0b1420, BGR
    lit = np.abs(thumbnail - page_ground).max(axis=2) > 40
    assert lit.mean() > 0.01, "no water lines where the page shows the thumbnail"


# --- in this process: no Taichi, no subprocess ------------------------------------------------------


class StillSolver:
    """A solver that steps nothing: what the frame loop asks of one."""

    def __init__(self):
        self.scene = SimpleNamespace(solver=SimpleNamespace(frame_rate=30.0))
        self.time = 0.0

    def step(self, dt):
        self.time += dt
        return {"substeps": 2, "max_speed": float("nan"), "active": 7}

    def set_obstacles(self, snap):
        pass

    def snapshot(self):
        z = np.zeros((7, 3), np.float32)
        return ParticleSnapshot(0, self.time, z, z, np.arange(7, dtype=np.int32), np.zeros(7, bool))

    def n_active(self):
        return 7

    def reset(self):
        self.time = 0.0


def tiny_scene(folder, port: int):
    path = folder / "tiny.toml"
    path.write_text(scene_text(port), encoding="utf-8")
    return load_scene(path)


def test_figures_of_a_frame_loop_and_its_warnings(tmp_path):
    from waterrock.app.status import StatusPage

    port = free_port()
    page = StatusPage(tiny_scene(tmp_path, port), None, None)
    try:
        assert json.loads(get(port, "/status.json")[2])["state"] == "starting"
        assert get(port, "/thumbnail.jpg")[0] == 404  # a run that draws nothing has no picture
        loop = FrameLoop(StillSolver(), None, None, console=[page], realtime=False)
        loop.run(seconds=0.3, handle_signals=False)
        logging.getLogger("waterrock.elsewhere").error("first")
        for _ in range(30):  # a warning each frame: one line, counted, not the last 20 lines
            logging.getLogger("waterrock.somewhere").warning("the camera %s went away", "cam0")
        logging.getLogger("waterrock.somewhere").info("not a warning")
        page.on_second(loop)
        s = json.loads(get(port, "/status.json")[2])
        assert s["state"] == "running" and s["frames_shown"] == loop.frames_shown > 0
        assert s["sim_frames"] == loop.sim_frames and s["particles"] == 7
        assert s["solver"] == {"substeps": 2.0, "max_speed": None}  # NaN is not JSON: null
        lines = [(w["message"], w["count"]) for w in s["warnings"][-2:]]
        assert lines == [("first", 1), ("the camera cam0 went away", 30)]
        assert s["warnings"][-1]["logger"] == "waterrock.somewhere" and s["warnings"][-1]["level"] == "WARNING"
        assert s["thumbnail"] is None and s["status_page"]["ms_per_frame"] is not None
        status, kind, html = get(port, "/")
        assert status == 200 and kind.startswith("text/html") and b'id="fps"' in html and b"http" not in html
    finally:
        page.close()
    assert page.warnings not in logging.getLogger("waterrock").handlers
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{HOST}:{port}/status.json", timeout=2)


def test_a_taken_port_raises_oserror(tmp_path):
    from waterrock.app.status import StatusPage

    with socket.socket() as holder:
        holder.bind((HOST, 0))
        holder.listen()
        with pytest.raises(OSError):
            StatusPage(tiny_scene(tmp_path, holder.getsockname()[1]))


@pytest.mark.gl
def test_thumbnail_is_the_picture_made_small(tmp_path):
    """The thumbnail, composed again from the light buffer, against the picture itself read back
    and shrunk: the same water, within JPEG's and the filters' differences."""
    from waterrock.app.session import OffscreenView
    from waterrock.app.status import StatusPage

    port = free_port()
    scene = tiny_scene(tmp_path, port)
    try:
        view = OffscreenView(scene, size=(640, 360))
    except Exception as err:  # noqa: BLE001 - no EGL here
        pytest.skip(f"no offscreen OpenGL: {err}")
    try:
        rng = np.random.default_rng(3)
        start = rng.uniform([-0.3, 0.3, -0.1], [0.3, 1.0, 0.1], (400, 3)).astype(np.float32)
        vel = np.zeros_like(start)
        ids = np.arange(400, dtype=np.int32)
        for k in range(12):  # falling, a little apart: trails of lines
            pos = start - np.float32(0.02 * k) * np.array([0.1 * np.sin(k), 1.0, 0.0], np.float32)
            view.update(ParticleSnapshot(k, k / 30.0, pos, vel, ids, np.zeros(400, bool)))
        view.render()
        picture = view.read_pixels()
        page = StatusPage(scene, view, None)
        try:
            loop = SimpleNamespace(times=SimpleNamespace(ms=dict), paused=False, stopping=False, fps=lambda: 0.0,
                                   frames_shown=1)
            page.on_second(loop)
            page.on_frame(loop)
            page.on_second(loop)
            assert json.loads(get(port, "/status.json")[2])["thumbnail"] is None  # none while no one looks
            assert get(port, "/thumbnail.jpg")[0] == 503  # and this asks for one
            page.on_second(loop)
            for _ in range(4):  # drawn after one frame, read back two frames later, collected two after that
                assert get(port, "/thumbnail.jpg")[0] == 503
                page.on_frame(loop)
            status, _, body = get(port, "/thumbnail.jpg")
        finally:
            page.close()
    finally:
        view.release()
    assert status == 200
    thumb = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]  # RGB
    assert thumb.shape == (180, 320, 3)
    expected = cv2.resize(picture, (320, 180), interpolation=cv2.INTER_AREA)
    assert expected.std() > 5  # there are lines to compare
    diff = np.abs(thumb.astype(int) - expected.astype(int))
    assert diff.mean() < 4 and np.percentile(diff, 99) < 40
    assert np.corrcoef(thumb.ravel(), expected.ravel())[0, 1] > 0.95  # upright, not mirrored, the same picture
