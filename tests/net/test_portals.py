"""Portals between works (net/portal.py, solver/portals.py): the messages, the solver's side,
and two works in two processes on 127.0.0.1 handing water over: nothing lost, nothing doubled,
a receiver killed and restarted, garbage on each socket counted and dropped."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import zmq

from waterrock.net.portal import Inflow, Outgoing, PortalLinks, transform_matrix
from waterrock.net.wire import Ack, BadMessage, Batch
from waterrock.resources import REPO_ROOT
from waterrock.scene import PortalTransform, SceneError, parse_scene


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sender_scene(port: int, window: int = 30) -> dict:
    """Water shot at the +x face, where the portal hands it to the receiver's inflow."""
    return {
        "name": "forest",
        "domain": {"lower": [0.0, 0.0, 0.0], "upper": [0.8, 0.6, 0.4]},
        "fluid": {"particle_radius": 0.02, "max_particles": 2000},
        "emitters": [{"shape": "disk", "center": [0.3, 0.3, 0.2], "direction": [1.0, 0.0, 0.0], "radius": 0.06,
                      "speed": 2.0}],
        "portals": [{"name": "to_rock", "direction": "out", "face": "x+", "peer": f"tcp://127.0.0.1:{port}",
                     "peer_portal": "from_forest", "window": window,
                     "transform": {"rotate_deg": [0.0, 90.0, 0.0], "translate": [0.2, 0.3, 0.9]}}],
        "solver": {"method": "pbf", "substeps": 1},
    }


def receiver_scene(port: int, budget: int = 3000) -> dict:
    return {
        "name": "rock",
        "domain": {"lower": [-0.5, 0.0, -0.5], "upper": [0.5, 1.0, 0.5]},
        "fluid": {"particle_radius": 0.02, "max_particles": budget},
        "sinks": [{"lower": [-1.0, -1.0, -1.0], "upper": [1.0, 0.06, 1.0]}],
        "portals": [{"name": "from_forest", "direction": "in", "port": port}],
        "solver": {"method": "pbf", "substeps": 1},
    }


def start(tmp_path, name: str, scene: dict, *args) -> tuple[subprocess.Popen, object]:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(scene))
    out = tmp_path / f"{name}.books.json"
    proc = subprocess.Popen([sys.executable, "-m", "tests.net.portal_node", str(path), "--out", str(out), *args],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, out


def wait_for(path, predicate, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = json.loads(path.read_text())
            if predicate(data):
                return data
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{path} never met the condition")


def finish(proc: subprocess.Popen, timeout: float = 120.0) -> None:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]


def taken_ids(books: dict) -> list[tuple[str, int]]:
    return [(sender, i) for sender, ids in books["ids"]["from_forest"] for i in ids]


# --- the messages and the transform --------------------------------------------------------------


def test_malformed_messages_are_named():
    good = Batch("s", "p", 3, np.arange(2, dtype=np.uint64), np.zeros((2, 3), np.float32),
                 np.ones((2, 3), np.float32))
    back = Batch.parse(good.frames())
    assert back.seq == 3 and np.array_equal(back.ids, [0, 1]) and np.array_equal(back.velocities, np.ones((2, 3)))
    frames = good.frames()
    cases = [
        ([b"hello"], "a batch has 4 frames"),
        ([b"\xff\xfe", *frames[1:]], "header is not JSON"),
        ([b'{"magic": "other"}', *frames[1:]], "not a waterrock message"),
        ([frames[0].replace(b'"v":1', b'"v":9'), *frames[1:]], "protocol version 9"),
        ([frames[0].replace(b'"n":2', b'"n":3'), *frames[1:]], "n = 3 needs arrays"),
        ([frames[0].replace(b'"seq":3', b'"seq":-1'), *frames[1:]], "seq = -1 outside"),
        ([frames[0], frames[1], np.full(6, np.nan, "<f4").tobytes(), frames[3]], "not finite"),
        (Ack("p", 1, 2, "e").frames() + [b"x"], "an ack has 1 frame"),
    ]
    for message, reason in cases:
        with pytest.raises(BadMessage, match=reason):
            (Ack.parse if message[0].find(b'"kind":"ack"') >= 0 else Batch.parse)(message)


def test_the_transform_turns_velocities_and_moves_positions():
    m = transform_matrix(PortalTransform(rotate_deg=(0.0, 90.0, 0.0), translate=(1.0, 2.0, 3.0)))
    assert np.allclose(m[:3, :3] @ [1.0, 0.0, 0.0], [0.0, 0.0, -1.0])  # +x turns to -z about y
    assert np.allclose(m @ [0.0, 0.0, 0.0, 1.0], [1.0, 2.0, 3.0, 1.0])


def test_a_portal_scene_is_checked():
    base = {"domain": {"lower": [0, 0, 0], "upper": [1, 1, 1]}}
    with pytest.raises(SceneError, match="exactly one of region or face"):
        parse_scene({**base, "portals": [{"name": "a", "direction": "out", "peer": "tcp://127.0.0.1:5000",
                                          "peer_portal": "b"}]})
    with pytest.raises(SceneError, match="an inflow needs the port"):
        parse_scene({**base, "portals": [{"name": "a", "direction": "in"}]})
    with pytest.raises(SceneError, match=r"\[portals.0.peer\]"):
        parse_scene({**base, "portals": [{"name": "a", "direction": "out", "face": "x+", "peer": "udp://x",
                                          "peer_portal": "b"}]})
    with pytest.raises(SceneError, match="two inflows listen on one port"):
        parse_scene({**base, "portals": [{"name": "a", "direction": "in", "port": 6000},
                                         {"name": "b", "direction": "in", "port": 6000}]})


# --- in one process: the solver's side, garbage, a port taken -------------------------------------


def test_garbage_on_each_socket_is_counted_and_dropped():
    from waterrock.solver.solver import Solver

    port = free_port()
    scene = parse_scene(receiver_scene(port))
    solver = Solver(scene, arch="cpu")
    ctx = zmq.Context.instance()
    inflow = Inflow(ctx, scene.portals[0], "epoch", scene.domain, scene.fluid.spacing)
    intruder = ctx.socket(zmq.DEALER)
    intruder.connect(inflow.endpoint)
    try:
        for message in ([b"garbage"], [b'{"magic":"waterrock","v":1,"kind":"batch"}', b"", b"", b""],
                        Batch("x", "someone_else", 0, np.zeros(1, np.uint64), np.zeros((1, 3), np.float32),
                              np.zeros((1, 3), np.float32)).frames()):
            intruder.send_multipart(message)
        raw = socket.create_connection(("127.0.0.1", port))  # not even ZeroMQ: its handshake refuses it
        raw.sendall(b"\x00\x01garbage\xff" * 100)
        deadline = time.monotonic() + 5
        while inflow.bad < 3 and time.monotonic() < deadline:
            inflow.pump(solver)
            time.sleep(0.01)
        raw.close()
        assert inflow.bad == 3 and inflow.received == 0
        # the outgoing side: a peer answering garbage, then a true acknowledgement
        out_scene = parse_scene(sender_scene(free_port()))
        peer = ctx.socket(zmq.ROUTER)
        peer.bind(out_scene.portals[0].peer)
        out = Outgoing(ctx, out_scene.portals[0], "me")
        out.hand_over(np.zeros((5, 3), np.float32), np.zeros((5, 3), np.float32))
        deadline = time.monotonic() + 5
        while out.acknowledged < 4 and time.monotonic() < deadline:
            out.pump(time.monotonic())
            if peer.poll(10):
                ident, *frames = peer.recv_multipart()
                batch = Batch.parse(frames)
                peer.send_multipart([ident, b"not an ack"])
                peer.send_multipart([ident, *Ack(batch.portal, batch.seq, 99, "e").frames()])  # more than sent
                peer.send_multipart([ident, *Ack(batch.portal, batch.seq, 4, "e").frames()])
        assert out.bad == 2 and out.acknowledged == 4 and out.drained == 1 and out.in_flight_particles == 0
        assert out.sent == out.acknowledged + out.drained
        out.close()
        peer.close(0)
    finally:
        intruder.close(0)
        inflow.close()


def test_a_taken_port_is_a_warning_and_the_work_runs_on(caplog):
    port = free_port()
    scene = parse_scene(receiver_scene(port))
    first = PortalLinks(scene)
    try:
        second = PortalLinks(scene)
        assert second.inflows == [] and "cannot listen on tcp://127.0.0.1:" in caplog.text
        second.close()
    finally:
        first.close()


def test_the_solver_hands_water_out_and_takes_it_in():
    from waterrock.solver.solver import Solver

    scene = parse_scene(sender_scene(free_port()))
    solver = Solver(scene, arch="cpu")
    taken = 0
    for _ in range(90):
        solver.step()
        which, x, v = solver.take_outflow()
        assert (which == 0).all() and (x[:, 0] >= 0.8 - 2 * 0.04 - 1e-6).all()
        taken += len(x)
    stats = solver.stats
    assert taken > 200
    assert solver.n_active() + taken + solver.sources.counters.to_numpy()[1] >= taken  # nothing invented
    budget = scene.fluid.max_particles
    free = budget - solver.n_active()
    came = solver.inject(np.tile([[0.4, 0.3, 0.2]], (free + 10, 1)), np.zeros((free + 10, 3)))
    assert came.sum() == free and solver.n_active() == budget, stats


# --- two works, two processes ---------------------------------------------------------------------


def test_two_works_hand_over_thousands_none_lost_none_doubled(tmp_path):
    port = free_port()
    stop = tmp_path / "stop"
    receiver, r_books = start(tmp_path, "rock", receiver_scene(port, budget=1200), "--stop", str(stop))
    wait_for(r_books, lambda b: b["frames"] > 0)
    sender, s_books = start(tmp_path, "forest", sender_scene(port), "--frames", "400")
    finish(sender)
    stop.touch()
    finish(receiver)
    s = json.loads(s_books.read_text())["portals"][0]
    r = json.loads(r_books.read_text())
    got = r["portals"][0]
    assert s["in_flight"] == 0 and s["sent"] > 2000
    assert s["sent"] == s["acknowledged"] + s["drained"]
    assert got["received"] == s["sent"] - s["drained"] == s["acknowledged"]  # exactly
    assert got["refused"] == s["refused"]  # a full budget refuses; the sender drains those
    ids = taken_ids(r)
    assert len(ids) == got["received"] and len(set(ids)) == len(ids)  # no id arrives twice


def test_a_receiver_killed_and_started_again(tmp_path):
    port = free_port()
    stop = tmp_path / "stop"
    first, first_books = start(tmp_path, "rock1", receiver_scene(port), "--stop", str(stop))
    wait_for(first_books, lambda b: b["frames"] > 0)
    enough = tmp_path / "enough"
    sender, s_books = start(tmp_path, "forest", sender_scene(port, window=10), "--fps", "60", "--stop", str(enough))
    wait_for(first_books, lambda b: b["portals"][0]["received"] > 300)
    first.send_signal(signal.SIGKILL)
    first.wait()
    wait_for(s_books, lambda b: b["portals"][0]["drained"] > 100)  # meanwhile the portal is a sink
    second, second_books = start(tmp_path, "rock2", receiver_scene(port), "--stop", str(stop))
    wait_for(second_books, lambda b: b["portals"][0]["received"] > 300)  # hand-overs resumed
    enough.touch()
    finish(sender)
    stop.touch()
    finish(second)
    s = json.loads(s_books.read_text())["portals"][0]
    r2 = json.loads(second_books.read_text())
    got = r2["portals"][0]
    assert s["in_flight"] == 0 and s["sent"] == s["acknowledged"] + s["drained"]  # the books balance
    assert s["by_epoch"][r2["run"]] == got["received"]  # exactly what the new run took
    ids = taken_ids(r2)
    assert len(set(ids)) == len(ids) == got["received"]
    first_run = json.loads(first_books.read_text())  # its last books before the kill
    assert first_run["portals"][0]["received"] > 300 and s["by_epoch"][first_run["run"]] > 300
