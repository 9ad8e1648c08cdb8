"""Simulation and render nodes (net/nodes.py, app/render_node.py): the frame message in each
encoding, frames matched by (run, generation, number) over a real PUB/SUB pair on 127.0.0.1,
garbage counted and dropped, and a render node's picture: its last one kept and faded through a
gap, its trails started afresh for a new run, and, in processes of their own, its picture of
frame N equal to the simulation node's."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import zmq

from tests.app.app_helpers import TINY_SCENE
from tests.net.test_portals import free_port
from waterrock.net.nodes import FrameReceiver, NodeError, SnapshotPublisher, endpoint, frame_of, snapshot_of
from waterrock.net.wire import BadMessage, Frame
from waterrock.snapshots import ParticleSnapshot


def particles(n: int, frame: int = 0, seed: int = 0, recycled: int = 0) -> ParticleSnapshot:
    rng = np.random.default_rng(seed)
    pos = (rng.random((n, 3)) * [1.0, 1.0, 0.4] + [-0.5, 0.1, -0.2]).astype(np.float32)
    vel = rng.normal(0.0, 1.0, (n, 3)).astype(np.float32)
    rec = np.zeros(n, bool)
    rec[:recycled] = True
    return ParticleSnapshot(frame=frame, time=frame / 30.0, positions=pos, velocities=vel,
                            ids=np.arange(n, dtype=np.int32), recycled=rec)


# --- the message ------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding, bytes_each, tolerance",
                         [("f32", 29, 0.0), ("f16", 17, 1 / 2048), ("q16", 17, None)])
def test_a_frame_round_trips_in_each_encoding(encoding, bytes_each, tolerance):
    snap = particles(1000, frame=7, recycled=3)
    parts = frame_of(snap, "run1", 2).frames(encoding)
    assert sum(len(p) if isinstance(p, bytes) else p.nbytes for p in parts[1:]) == bytes_each * 1000
    back = Frame.parse([bytes(p) for p in parts])
    assert (back.run, back.generation, back.frame, back.share) == ("run1", 2, 7, 1.0)
    got = snapshot_of(back)
    np.testing.assert_array_equal(got.ids, snap.ids)
    np.testing.assert_array_equal(got.recycled, snap.recycled)
    if tolerance is None:  # 16-bit steps of the frame's box
        step = (snap.positions.max(0) - snap.positions.min(0)) / 65535
        assert np.all(np.abs(got.positions - snap.positions) <= 0.5 * step + 1e-6)
        assert np.abs(got.velocities - snap.velocities).max() <= np.abs(snap.velocities).max() / 2048
    else:
        assert np.abs(got.positions - snap.positions).max() <= tolerance * np.abs(snap.positions).max()
        assert np.abs(got.velocities - snap.velocities).max() <= tolerance * np.abs(snap.velocities).max()


@pytest.mark.parametrize("encoding, bytes_each, tolerance",
                         [("f32", 33, 0.0), ("f16", 19, 1 / 2048), ("q16", 19, 1 / 2048)])
def test_how_packed_the_water_is_goes_along_and_old_frames_still_read(encoding, bytes_each, tolerance):
    snap = particles(1000, frame=3)
    packing = np.random.default_rng(1).uniform(0.3, 1.1, 1000).astype(np.float32)
    snap = ParticleSnapshot(snap.frame, snap.time, snap.positions, snap.velocities, snap.ids, snap.recycled, packing)
    parts = [bytes(p) for p in frame_of(snap, "run1", 0).frames(encoding)]
    assert len(parts) == 6 and sum(len(p) for p in parts[1:]) == bytes_each * 1000
    got = snapshot_of(Frame.parse(parts))
    assert got.packing.dtype == np.float32 and np.abs(got.packing - packing).max() <= tolerance * 1.1
    # the particles that draw lines keep theirs
    some = frame_of(snap, "run1", 0, share=0.1)
    np.testing.assert_array_equal(some.packing, packing[np.isin(snap.ids, some.ids)])
    # a frame without (a snapshot with none, or a sender from before) reads as it did: none
    old = [bytes(p) for p in frame_of(particles(1000), "run1", 0).frames(encoding)]
    assert len(old) == 5 and b"packing" not in old[0] and snapshot_of(Frame.parse(old)).packing is None
    # a header and a frame count that disagree are refused
    with pytest.raises(BadMessage, match="packing"):
        Frame.parse(parts[:5])
    with pytest.raises(BadMessage, match="packing"):
        Frame.parse([*old, parts[5]])


def test_only_the_particles_that_draw_lines():
    from waterrock.render.trails import chosen

    snap = particles(5000)
    f = frame_of(snap, "r", 0, share=0.1)
    np.testing.assert_array_equal(f.ids, snap.ids[chosen(snap.ids, 0.1)])
    assert 350 < len(f.ids) < 650 and f.share == 0.1


def _garbled(parts: list[bytes]) -> dict[str, list]:
    header = parts[0].decode()
    return {
        "not ours": [b"hello", b"", b"", b"", b""],
        "too few parts": parts[:3],
        "count does not match": [header.replace('"n":10', '"n":11').encode(), *parts[1:]],
        "unknown encoding": [header.replace('"enc":"f32"', '"enc":"f8"').encode(), *parts[1:]],
        "a portal's batch": [header.replace('"kind":"frame"', '"kind":"batch"').encode(), *parts[1:]],
        "not finite": [parts[0], np.full(30, np.nan, "<f4").tobytes(), *parts[2:]],
        "frame number": [header.replace('"frame":0', '"frame":-1').encode(), *parts[1:]],
    }


def test_malformed_frames_are_refused_with_the_reason():
    parts = [bytes(p) for p in frame_of(particles(10), "r", 0).frames("f32")]
    for what, bad in _garbled(parts).items():
        with pytest.raises(BadMessage):
            Frame.parse(bad)
        assert what


def test_endpoints_default_to_this_machine():
    assert endpoint("5720") == "tcp://127.0.0.1:5720"
    assert endpoint("tcp://10.0.0.2:5720") == "tcp://10.0.0.2:5720"
    for bad in ("udp://x:1", "tcp://host", "70000", "tcp://a:99999"):
        with pytest.raises(NodeError):
            endpoint(bad)


# --- publisher and receiver over 127.0.0.1 ----------------------------------------------------


def _publisher_again(port: int) -> SnapshotPublisher:
    """A publisher on a port just closed (ZeroMQ lets it go on its own thread, a moment later)."""
    for _ in range(100):
        try:
            return SnapshotPublisher(str(port))
        except NodeError:
            time.sleep(0.02)
    return SnapshotPublisher(str(port))


def _connected(pub: SnapshotPublisher, rx: FrameReceiver, n: int = 50, take: bool = True) -> None:
    """Publish frame 0 until it arrives (a subscription takes a moment to reach the publisher);
    taken here, or left for the caller's loop (``take`` False)."""
    for _ in range(200):
        pub.publish(particles(n, frame=0))
        if rx.wait(0.02) and (not take or rx.take()):
            return
    raise AssertionError("the receiver never got a frame")


def test_frames_in_order_missed_stale_restarts_and_garbage():
    port = free_port()
    pub = SnapshotPublisher(str(port))
    rx = FrameReceiver(str(port), max_gap=4)
    garbage = zmq.Context.instance().socket(zmq.PUB)
    try:
        _connected(pub, rx)
        for k in (1, 2, 3, 5, 5, 4, 12):  # 4 missed, one repeated, one late, then a gap of 7 > 4
            pub.publish(particles(50, frame=k))
        time.sleep(0.2)
        got = [(f.frame, fresh) for f, fresh in rx.take()]
        assert got == [(1, False), (2, False), (3, False), (5, False), (12, True)]
        assert (rx.missed, rx.stale) == (1 + 6, 2)
        pub.reset()  # the water starts again: frame numbers from 0 in a new generation
        pub.publish(particles(50, frame=0))
        time.sleep(0.1)
        assert [(f.frame, f.generation, fresh) for f, fresh in rx.take()] == [(0, 1, True)]
        assert rx.restarts == 1
        # a second publisher on the same port after the first is gone: the simulation node restarted
        pub.close()
        pub = _publisher_again(port)
        _connected(pub, rx)
        assert rx.restarts == 2 and rx.last[0] == pub.run
        # garbage from another program on the publisher's port: counted, dropped, the frames go on
        pub.close()
        for _ in range(100):
            try:
                garbage.bind(f"tcp://127.0.0.1:{port}")
                break
            except zmq.ZMQError:
                time.sleep(0.02)
        for _ in range(100):
            garbage.send_multipart([b"GET / HTTP/1.1", b"x"])
            if rx.wait(0.02):
                break
        rx.take()
        assert rx.bad >= 1
    finally:
        garbage.close(0)
        pub.close()
        rx.close()


def test_a_taken_port_is_a_clear_error():
    port = free_port()
    first = SnapshotPublisher(str(port))
    try:
        with pytest.raises(NodeError, match=f"127.0.0.1:{port}"):
            SnapshotPublisher(str(port))
    finally:
        first.close()


# --- the render node's picture -------------------------------------------------------------------


@pytest.fixture
def tiny(tmp_path):
    from waterrock.scene import load_scene

    p = tmp_path / "tiny.toml"
    p.write_text(TINY_SCENE, encoding="utf-8")
    return load_scene(str(p))


def test_the_last_picture_is_kept_then_fades_and_a_new_run_starts_afresh(tiny):
    from waterrock.app.render_node import FADE_AFTER_S, FADE_S, RenderNodeLoop
    from waterrock.app.session import OffscreenView

    background = _background(tiny)  # first: each view is a context of its own
    port = free_port()
    pub = SnapshotPublisher(str(port))
    rx = FrameReceiver(str(port), max_gap=tiny.render.trails.length)
    view = OffscreenView(tiny)
    try:
        loop = RenderNodeLoop(rx, view)
        _connected(pub, rx, 400)
        for k in range(1, 9):
            pub.publish(particles(400, frame=k, seed=k))
        time.sleep(0.2)
        assert loop.tick() == 8 and loop.frame == 8
        lit = view.read_pixels().astype(int)
        assert np.count_nonzero(np.abs(lit - background).sum(-1) > 30) > 500  # lines drawn
        loop.tick()  # no frame: the same picture
        np.testing.assert_array_equal(view.read_pixels(), lit)
        rx.last_arrival -= FADE_AFTER_S + 0.5 * FADE_S  # half faded
        loop.tick()
        half = view.read_pixels().astype(int)
        assert 0.25 < loop.fade <= 0.5  # half, less the ticks' own time
        assert 0 < np.abs(half - background).sum() < np.abs(lit - background).sum()
        rx.last_arrival -= FADE_S
        loop.tick()
        assert loop.fade == 0.0
        assert np.abs(view.read_pixels().astype(int) - background).max() <= 2  # no line left
        # the simulation node restarts: the first frame of the new run starts the trails afresh
        pub.close()
        pub = _publisher_again(port)
        trails = view.renderer.trails
        _connected(pub, rx, 400, take=False)
        loop.tick()
        assert rx.restarts == 1 and loop.fade == 1.0
        assert trails.lengths.max() == 1  # one position each: nothing joins the old run's water
    finally:
        view.release()
        pub.close()
        rx.close()


def _background(scene) -> np.ndarray:
    """The scene's picture with no water."""
    from waterrock.app.loop import clear_snapshot
    from waterrock.app.session import OffscreenView

    v = OffscreenView(scene)
    try:
        v.update(clear_snapshot())
        v.render()
        return v.read_pixels().astype(int)
    finally:
        v.release()


@pytest.mark.timeout(240)
def test_a_render_node_draws_frame_n_as_the_simulation_node_does(tmp_path):
    """Three processes' worth: the simulation node (`waterrock run --headless --publish`) and a
    render node (`waterrock project --from --headless`) each save their picture of frame 40."""
    scene = tmp_path / "tiny.toml"
    scene.write_text(TINY_SCENE, encoding="utf-8")
    port, n = free_port(), 40
    cmd = [sys.executable, "-m", "waterrock.app.cli"]
    node = subprocess.Popen([*cmd, "project", "--scene", str(scene), "--from", str(port), "--headless", "--seconds",
                             "60", "--screenshot", str(tmp_path / "node.png"), "--screenshot-frame", str(n)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        sim = subprocess.run([*cmd, "run", "--scene", str(scene), "--headless", "--seconds", "2.5", "--publish",
                              str(port), "--screenshot", str(tmp_path / "sim.png"), "--screenshot-frame", str(n)],
                             capture_output=True, text=True, timeout=180)
        assert sim.returncode == 0, sim.stdout[-2000:] + sim.stderr[-2000:]
        assert f"frame {n}:" in sim.stdout
        deadline = time.monotonic() + 20
        while not (tmp_path / "node.png").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        node.terminate()
        out = node.communicate(timeout=30)[0]
    assert (tmp_path / "node.png").exists(), out[-3000:]
    import cv2

    a = cv2.imread(str(tmp_path / "sim.png")).astype(int)
    b = cv2.imread(str(tmp_path / "node.png")).astype(int)
    background = _background_of(scene)
    assert np.count_nonzero(np.abs(a - background).sum(-1) > 30) > 200  # frame 40 has water in it
    assert np.abs(a - b).max() <= 1, f"differ at {np.count_nonzero(np.abs(a - b).max(-1) > 1)} pixels"


def _background_of(path) -> np.ndarray:
    from waterrock.scene import load_scene

    return _background(load_scene(str(path)))[:, :, ::-1]  # as cv2 reads it, BGR


def test_a_render_node_on_its_outputs(tmp_path, xvfb_display):
    """`waterrock project --from` in a window on a virtual display draws the frames this test
    publishes, and its overlay's books are in its log."""
    scene = tmp_path / "tiny.toml"
    scene.write_text(TINY_SCENE, encoding="utf-8")
    port = free_port()
    pub = SnapshotPublisher(str(port), "q16")
    shot = tmp_path / "out.png"
    node = subprocess.Popen([sys.executable, "-m", "waterrock.app.cli", "-v", "project", "--scene", str(scene),
                             "--from", str(port), "--seconds", "2", "--screenshot", str(shot)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "DISPLAY": xvfb_display})
    try:
        k = 0
        while node.poll() is None and k < 3000:
            k += 1
            pub.publish(particles(600, frame=k, seed=k % 7))
            time.sleep(1 / 30)
        out = node.communicate(timeout=60)[0]
    finally:
        node.kill()
        pub.close()
    assert node.returncode == 0, out[-3000:]
    import cv2

    img = cv2.imread(str(shot)).astype(int)
    lit = np.count_nonzero(img.sum(-1) > 150)
    assert lit > 1000, f"{lit} bright pixels"
    assert "render node: drawing the frames published at" in out and "missed" in out
