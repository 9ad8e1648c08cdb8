"""OSC control (app/control.py), on 127.0.0.1 only: a message from python-osc changes what the next
frame draws (checked on pixels), pauses and resumes the water, sets an emitter's flow; a status
request is answered with the loop's figures; OSCQuery lists every live setting with its type,
range and value, and follows a change; what cannot be used is counted, answered with the reason
and ignored, and the water runs on; a taken port is a warning. The same, end to end, through
`waterrock run --headless` in a subprocess."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from tests.app.app_helpers import TINY_SCENE, solver_and_view
from tests.net.test_portals import free_port
from waterrock.rate_limit import RateLimitedLog
from waterrock.scene import parse_scene, read_scene_text

RED = [1.0, 0.0, 0.0]


def console_scene(tmp_path, osc_port: int, query_port: int):
    p = tmp_path / "tiny_osc.toml"
    # the file's watcher off: this file tests OSC control alone (tests/app/test_live.py, the two together)
    p.write_text(TINY_SCENE + f"\n[console]\nstatus_port = 0\nosc_port = {osc_port}\noscquery_port = {query_port}\n"
                 "watch_scene = false\n",
                 encoding="utf-8")
    return p


def wait_for(condition, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "the OSC listener did not take the message in time"
        time.sleep(0.005)


def replies(client: SimpleUDPClient, n: int, timeout: float = 5.0) -> list:
    got, end = [], time.monotonic() + timeout
    while len(got) < n and time.monotonic() < end:
        got += list(client.get_messages(0.1))
    return got


def query(port: int, path: str = "/") -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())


def red_and_white(rgb: np.ndarray) -> tuple[int, int]:
    """Pixels of red light (red above 50 levels and 20 above the blue), and of white light (every
    channel above 50): the scene's lines are a pale blue white over a dark blue background."""
    rgb = rgb.astype(int)
    red = (rgb[..., 0] > 50) & (rgb[..., 0] > rgb[..., 2] + 20)
    return int(np.count_nonzero(red)), int(np.count_nonzero(rgb.min(axis=2) > 50))


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """A real loop (the tiny scene's solver on Taichi's CPU, its offscreen picture) with OSC control,
    stepped one simulation frame a tick; and a python-osc client on 127.0.0.1."""
    from waterrock.app.control import OscControl
    from waterrock.app.loop import FrameLoop
    from waterrock.app.session import Inputs

    path = console_scene(tmp_path_factory.mktemp("control"), free_port(), free_port())
    scene = parse_scene(read_scene_text(path), path)
    solver, view = solver_and_view(scene)
    inputs = Inputs(scene, solver)
    control = OscControl(scene, view, inputs)
    loop = FrameLoop(solver, inputs.obstacles, view, realtime=False, console=[control])
    for _ in range(12):  # lines of a dozen positions
        loop.tick()
    loop.each_second()  # the loop's second: the console learns it has no frame-rate governor
    client = SimpleUDPClient("127.0.0.1", control.address[1])
    yield loop, control, client, view
    client.close()
    control.close()
    inputs.close()
    view.release()


def send(control, client, address: str, value, counted: str = "messages") -> None:
    before = control.counts[counted]
    client.send_message(address, value)
    wait_for(lambda: control.counts[counted] > before)


def test_a_colour_sent_over_osc_colours_the_next_frame(running):
    loop, control, client, view = running
    loop.tick()
    red, white = red_and_white(view.read_pixels())
    assert white > 200 and red == 0  # the scene's pale blue lines
    send(control, client, "/waterrock/param/render.lines.color", RED)
    send(control, client, "/waterrock/param/render.lines.color_fast", [1, 0, 0])  # ints are numbers too
    loop.tick()
    red, white = red_and_white(view.read_pixels())
    assert red > 200 and white == 0
    assert view.renderer.settings.lines.color == (1.0, 0.0, 0.0) == view.renderer.lines.settings.color
    for address, value in (("render.lines.color", [0.8, 0.9, 1.0]), ("render.lines.color_fast", [0.95, 0.98, 1.0])):
        send(control, client, "/waterrock/param/" + address, value)
    loop.tick()
    assert red_and_white(view.read_pixels())[0] == 0


def test_a_look_chosen_by_name_over_osc_is_the_next_frame(running):
    """/param/render.look.preset: every colour and weight of the named look at once, a show desk's
    one button; the look's sizes and the trails stay; an unknown look is refused naming the three."""
    loop, control, client, view = running
    renderer = view.renderer
    width, length = renderer.settings.lines.width_slow, renderer.trails.length
    loop.tick()
    dark = np.median(view.read_pixels().astype(int))
    send(control, client, "/waterrock/param/render.look.preset", "ink")
    loop.tick()
    ink = view.read_pixels().astype(int)
    assert np.median(ink) > 200 and dark < 40  # a pale paper ground, against the deep blue-black
    assert ((ink.max(axis=2) < 120) & (ink.min(axis=2) >= 0)).sum() > 100  # dark ink lines on it
    s = renderer.settings
    assert (s.look.preset, s.lines.blend, s.background) == ("ink", "alpha", (0.92, 0.90, 0.85))
    assert s.lines.width_slow != width and renderer.trails.length == length  # the look's widths; the trails kept
    before = control.counts["malformed"]
    client.send_message("/waterrock/param/render.look.preset", "sepia")
    (error,) = replies(client, 1)
    assert "'pale on deep', 'ink' or 'glow'" in error.params[0] and control.counts["malformed"] == before + 1
    send(control, client, "/waterrock/param/render.look.preset", "pale on deep")
    loop.tick()
    assert abs(np.median(view.read_pixels().astype(int)) - dark) <= 3 and renderer.settings.lines.width_slow == width


def test_the_trails_and_the_flattening_are_set_live(running):
    loop, control, client, view = running
    renderer = view.renderer
    k, flatten = renderer.trails.length, renderer.flatten.copy()
    send(control, client, "/waterrock/param/render.trails.length", 16.0)  # a whole float, as TouchDesigner sends
    send(control, client, "/waterrock/param/render.projection.azimuth_deg", 90)
    loop.tick()
    assert renderer.trails.length == 16 and renderer.quality.length == 16 and not np.allclose(renderer.flatten, flatten)
    for _ in range(3):
        loop.tick()
    assert red_and_white(view.read_pixels())[1] > 100  # trails again, seen from the side
    send(control, client, "/waterrock/param/render.trails.length", k)
    send(control, client, "/waterrock/param/render.projection.azimuth_deg", 0.0)
    loop.tick()
    assert renderer.trails.length == k and np.allclose(renderer.flatten, flatten)
    for _ in range(12):
        loop.tick()
    # a window's governor steps on the length OSC set, not the one the run started with
    from waterrock.app.governor import LEVELS
    from waterrock.app.session import open_governor

    send(control, client, "/waterrock/param/render.trails.length", 16.0)
    loop.tick()
    open_governor(control.scene, renderer, loop.solver).apply(LEVELS[-1])
    assert renderer.trails.length == 16 and renderer.quality.length == 8


def test_pause_stops_the_picture_and_resume_starts_it_again(running):
    loop, control, client, view = running
    send(control, client, "/waterrock/pause", [])
    loop.tick()
    frame, first = loop.sim_frames, view.read_pixels()
    loop.tick()
    assert loop.paused and loop.sim_frames == frame
    assert np.array_equal(view.read_pixels(), first)
    send(control, client, "/waterrock/resume", 1.0)  # a button's press (its release, 0, does nothing)
    loop.tick()
    assert not loop.paused and loop.sim_frames == frame + 1
    assert not np.array_equal(view.read_pixels(), first)


def test_a_status_request_is_answered_with_the_loops_figures(running):
    loop, control, client, _ = running
    loop.tick()
    loop.each_second()  # the loop's second: the figures a request is answered with
    client.send_message("/waterrock/status", [])
    (reply,) = replies(client, 1)
    assert reply.address == "/waterrock/status"
    fps, particles, tracker, paused, t, shown, dropped, malformed = reply.params
    assert particles == loop.particles > 500 and shown == loop.frames_shown > 10
    assert 0 < fps == pytest.approx(loop.fps(), abs=0.01) and t == pytest.approx(loop.solver.time, abs=1e-3)
    assert tracker == "tracker: none" and paused == 0 and dropped == 0 and malformed == control.counts["malformed"]


def test_oscquery_lists_every_live_setting_with_its_value_and_follows_a_change(running):
    loop, control, client, _ = running
    port = control.query_address[1]
    root = query(port)["CONTENTS"]["waterrock"]["CONTENTS"]
    params = root["param"]["CONTENTS"]
    assert set(params) == set(control.params) and {"pause", "resume", "reset", "status", "scene"} <= set(root)
    opacity = params["render.lines.opacity"]
    assert opacity["TYPE"] == "f" and opacity["VALUE"] == [0.35] and opacity["RANGE"] == [{"MIN": 0.0, "MAX": 1.0}]
    assert opacity["FULL_PATH"] == "/waterrock/param/render.lines.opacity" and opacity["ACCESS"] == 3
    assert params["render.trails.length"]["TYPE"] == "i" and params["render.lines.blend"]["RANGE"] == [
        {"VALS": ["additive", "alpha"]}]
    assert params["emitters.0.speed"]["VALUE"] == [1.0] and params["emitters.0.speed"]["RANGE"][0]["MAX"] == 20.0
    info = query(port, "/?HOST_INFO")
    assert info["OSC_PORT"] == control.address[1] and info["OSC_TRANSPORT"] == "UDP" and info["EXTENSIONS"]["RANGE"]
    send(control, client, "/waterrock/param/render.lines.opacity", 0.5)
    assert query(port, "/waterrock/param/render.lines.opacity?VALUE") == {"VALUE": [0.5]}
    loop.tick()
    assert view_opacity(loop) == 0.5
    send(control, client, "/waterrock/param/render.lines.opacity", 0.35)


def view_opacity(loop) -> float:
    return loop.view.renderer.lines.settings.opacity


def test_an_emitters_flow_is_set_live_within_the_scenes_limits(running):
    loop, control, client, _ = running
    sources = loop.solver.sources
    send(control, client, "/waterrock/param/emitters.0.rate", 3000.0)
    loop.tick()
    assert sources.layers_per_second[0] * sources.count[0] == pytest.approx(3000.0)
    send(control, client, "/waterrock/param/emitters.0.speed", 2.0)
    loop.tick()
    assert np.linalg.norm(sources.velocities.to_numpy()[0]) == pytest.approx(2.0)
    assert sources.layers_per_second[0] * sources.count[0] == pytest.approx(3000.0)  # its rate stays set
    before = control.counts["malformed"]
    client.send_message("/waterrock/param/emitters.0.speed", 50.0)
    (error,) = replies(client, 1)
    assert error.address == "/waterrock/error" and "max_speed" in error.params[0]
    assert control.counts["malformed"] == before + 1 and sources.emitters[0].speed == 2.0
    for key, value in (("speed", 1.0), ("rate", 1481.4815)):
        send(control, client, f"/waterrock/param/emitters.0.{key}", value)
    loop.tick()


def test_reset_starts_the_water_again(running):
    loop, control, client, _ = running
    assert loop.solver.frame > 20
    send(control, client, "/waterrock/reset", [])
    loop.tick()
    assert loop.solver.frame == 1
    for _ in range(12):
        loop.tick()


def test_what_cannot_be_used_is_counted_answered_and_ignored(running, caplog):
    loop, control, client, view = running
    settings, before = control._wanted, control.counts["malformed"]
    control._warn = RateLimitedLog(logging.getLogger("waterrock.app.control"))  # not held back by an earlier test's
    with caplog.at_level(logging.WARNING, logger="waterrock.app.control"):
        client._sock.sendto(b"\x00garbage, not OSC", ("127.0.0.1", control.address[1]))
        client.send_message("/waterrock/paws", [])  # an unknown address
        client.send_message("/waterrock/param/render.lines.color", ["red", 0.0, 0.0])  # a wrong type
        client.send_message("/waterrock/param/render.lines.color", [1.0, 0.0])  # a value missing
        client.send_message("/waterrock/param/render.lines.opacity", 2.0)  # out of range
        client.send_message("/waterrock/param/render.resolution", [640, 480])  # not live
        client.send_message("/waterrock/status", 1)  # takes no value
        errors = replies(client, 7)
        wait_for(lambda: control.counts["malformed"] == before + 7)
    assert [m.address for m in errors] == ["/waterrock/error"] * 7
    reasons = " | ".join(m.params[0] for m in errors)
    for reason in ("unreadable packet", "not an address", "takes a number, got 'red'", "takes 3 values",
                   "less than or equal to 1", "not a live setting", "takes no value"):
        assert reason in reasons
    assert control._wanted is settings and control._queue.empty()
    assert len([r for r in caplog.records if r.name == "waterrock.app.control"]) == 1  # one line, rate-limited
    shown = loop.frames_shown
    loop.tick()  # the water runs on
    assert loop.frames_shown == shown + 1 and control._thread.is_alive()
    client.send_message("/waterrock/scene", "no_such_scene")
    (error,) = replies(client, 1)
    assert "no_such_scene" in error.params[0] and control.counts["refused"] == 1


def test_the_frame_pays_almost_nothing_when_nothing_is_asked(running):
    loop, control, *_ = running
    n = 20000
    t0 = time.perf_counter()
    for _ in range(n):
        control.on_frame(loop)
    per_frame = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    control.on_second(loop)
    per_second = time.perf_counter() - t0
    assert per_frame < 50e-6 and per_second < 5e-3, (per_frame, per_second)  # goal: 0.2 ms with the status page


def test_a_run_that_draws_nothing_offers_the_emitters_only(tmp_path):
    from waterrock.app.control import OscControl

    path = console_scene(tmp_path, free_port(), free_port())
    control = OscControl(parse_scene(read_scene_text(path), path))
    try:
        assert set(control.params) == {"emitters.0.speed", "emitters.0.rate"}
        with SimpleUDPClient("127.0.0.1", control.address[1]) as client:
            client.send_message("/waterrock/param/render.lines.color", RED)
            (error,) = replies(client, 1)
        assert "(this run draws nothing)" in error.params[0]
        assert set(query(control.query_address[1])["CONTENTS"]["waterrock"]["CONTENTS"]["param"]["CONTENTS"]) == {
            "emitters.0.speed", "emitters.0.rate"}
    finally:
        control.close()


def test_a_taken_port_is_a_warning_and_the_app_runs_on(tmp_path, caplog):
    from waterrock.app.console import open_console

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        path = console_scene(tmp_path, taken.getsockname()[1], free_port())
        with caplog.at_level(logging.WARNING):
            services = open_console(parse_scene(read_scene_text(path), path))
    assert services == []
    assert any("OSC control not started (OSError" in r.getMessage() and "runs on without it" in r.getMessage()
               for r in caplog.records)
    with socket.socket() as taken:  # OSCQuery's port taken: the OSC port is given back too
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        osc = free_port()
        path = console_scene(tmp_path, osc, taken.getsockname()[1])
        assert open_console(parse_scene(read_scene_text(path), path)) == []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", osc))


def test_the_command_answers_over_osc_and_draws_what_it_is_told(tmp_path):
    osc, query_port = free_port(), free_port()
    path = console_scene(tmp_path, osc, query_port)
    shot = tmp_path / "shot.png"
    proc = subprocess.Popen([sys.executable, "-m", "waterrock.app.cli", "run", "--headless", "--arch", "cpu",
                             "--scene", str(path), "--seconds", "3", "--screenshot", str(shot)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with SimpleUDPClient("127.0.0.1", osc) as client:
            status = None
            end = time.monotonic() + 60
            while status is None or status.params[5] == 0:  # until the first second's figures
                assert time.monotonic() < end and proc.poll() is None, "no status reply from the running app"
                client.send_message("/waterrock/status", [])
                status = next(iter(replies(client, 1, timeout=0.3)), status)
            client.send_message("/waterrock/param/render.lines.color", RED)
            client.send_message("/waterrock/param/render.lines.color_fast", RED)
            client.send_message("/waterrock/param/render.lines.width", -1.0)
            assert [m.address for m in replies(client, 1)] == ["/waterrock/error"]
            assert query(query_port, "/waterrock/param/render.lines.color?VALUE") == {"VALUE": RED}
            time.sleep(1.2)
            client.send_message("/waterrock/status", [])
            (status,) = replies(client, 1)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    fps, particles, tracker, paused, t, shown, dropped, malformed = status.params
    assert fps > 0 and particles > 500 and shown > 1 and t > 0 and tracker == "tracker: none" and malformed == 1
    assert "render.lines.width (-1.0,): Input should be greater than 0" in err
    import cv2

    red, white = red_and_white(cv2.imread(str(shot))[:, :, ::-1])
    assert red > 200 and white == 0, out[-2000:]


def test_another_scene_by_name_runs_from_the_next_frame(running, tmp_path, caplog):
    """/waterrock/scene: the other scene's look and water (a new solver), what is read at start
    kept. Last in the module: its loop runs the other scene after it."""
    loop, control, client, view = running
    other = tmp_path / "other.toml"
    other.write_text(TINY_SCENE.replace("[render.rock]", "[render.lines]\ncolor = [1.0, 0.0, 0.0]\n"
                                        "color_fast = [1.0, 0.0, 0.0]\n[render.rock]")
                     .replace("particle_radius = 0.015", "particle_radius = 0.02")
                     .replace("resolution = [320, 240]", "resolution = [640, 480]"))
    old = loop.solver
    with caplog.at_level(logging.INFO, logger="waterrock.app.live"):
        client.send_message("/waterrock/scene", str(other))
        (answer,) = replies(client, 1)
        assert answer.address == "/waterrock/scene" and answer.params == [str(other)]
        wait_for(lambda: not control._queue.empty())
        loop.tick()
    assert loop.solver is not old and loop.solver.scene.fluid.particle_radius == 0.02
    assert view.renderer.settings.resolution == (320, 240)  # read at start: kept, and said so
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("OSC /waterrock/scene") and "render.resolution" in m and "take effect at the next start"
               in m for m in said)
    assert any(m.startswith(f"scene switched to {other} by OSC: render look applied; water restarted") for m in said)
    for _ in range(12):
        loop.tick()
    red, white = red_and_white(view.read_pixels())
    assert red > 50 and white == 0  # the other scene's red lines, over its own new water (started 12 frames ago)
