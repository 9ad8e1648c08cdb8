"""TUIO and plain OSC over real UDP packets on loopback."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from waterrock.tracking.osc import BLOB_IDS, CURSOR_IDS, PLAIN_IDS, OscObstacleServer
from waterrock.tracking.settings import TrackingSettings


def msg(address: str, *args):
    m = OscMessageBuilder(address)
    for a in args:
        m.add_arg(a)
    return m.build()


def tuio_bundle(profile: str, fseq: int, sets: dict[int, tuple], alive: list[int]):
    b = OscBundleBuilder(IMMEDIATELY)
    b.add_content(msg(profile, "source", "test@127.0.0.1"))
    b.add_content(msg(profile, "alive", *alive))
    for sid, args in sets.items():
        b.add_content(msg(profile, "set", sid, *args))
    b.add_content(msg(profile, "fseq", fseq))
    return b.build()


def until(cond, timeout: float = 3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.005)
    raise AssertionError("timed out waiting for OSC")


@pytest.fixture
def server():
    s = TrackingSettings(
        osc=True,
        osc_port=0,
        osc_timeout=0.3,
        fade_time=0.3,
        osc_radius=0.25,
        osc_height=1.7,
        tuio_origin=(-2.0, 0.0, -1.5),
        tuio_u=(4.0, 0.0, 0.0),
        tuio_v=(0.0, 0.0, 3.0),
    )
    with OscObstacleServer(s) as srv:
        host, port = srv.address
        assert host == "127.0.0.1"
        yield srv, SimpleUDPClient(host, port)


def test_tuio_cursors_set_alive_fseq(server):
    srv, client = server
    client.send(
        tuio_bundle("/tuio/2Dcur", 1, {5: (0.5, 0.5, 0.1, 0.0, 0.0), 9: (0.25, 1.0, 0.0, -0.2, 0.0)}, [5, 9])
    )
    until(lambda: len(srv.latest()) == 2)
    snap = srv.latest()
    by_id = {int(i): k for k, i in enumerate(snap.ids)}
    c5, c9 = by_id[CURSOR_IDS + 5], by_id[CURSOR_IDS + 9]
    np.testing.assert_allclose(snap.a[c5], [0.0, 0.25, 0.0], atol=1e-6)  # the middle of the mapped area
    np.testing.assert_allclose(snap.b[c5], [0.0, 1.45, 0.0], atol=1e-6)  # a 1.7 m tall capsule
    np.testing.assert_allclose(snap.a[c9][[0, 2]], [-1.0, 1.5], atol=1e-6)
    np.testing.assert_allclose(snap.velocity[c5], [0.4, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(snap.velocity[c9], [0.0, 0.0, -0.6], atol=1e-6)
    # cursor 5 leaves: not alive in the next frame
    client.send(tuio_bundle("/tuio/2Dcur", 2, {9: (0.3, 1.0, 0.0, 0.0, 0.0)}, [9]))
    until(lambda: len(srv.latest()) == 1)
    assert srv.latest().ids.tolist() == [CURSOR_IDS + 9]
    # a late packet from frame 1 must not bring cursor 5 back
    client.send(tuio_bundle("/tuio/2Dcur", 1, {5: (0.5, 0.5, 0.0, 0.0, 0.0)}, [5, 9]))
    client.send(msg("/waterrock/obstacle", 1, 0.0, 1.0, 0.0, 0.1))  # a marker that the late one arrived
    until(lambda: len(srv.latest()) == 2)
    assert sorted(srv.latest().ids.tolist()) == [CURSOR_IDS + 9, PLAIN_IDS + 1]


def test_tuio_blob_radius_from_its_size(server):
    srv, client = server
    # set s x y angle w h area X Y A m r: 0.1 x 0.1 of a 4 x 3 m area: half extents 0.2 and 0.15 m
    client.send(
        tuio_bundle("/tuio/2Dblb", 7, {3: (0.5, 0.5, 0.0, 0.1, 0.1, 0.01, 0.0, 0.0, 0.0, 0.0, 0.0)}, [3])
    )
    until(lambda: len(srv.latest()) == 1)
    snap = srv.latest()
    assert snap.ids.tolist() == [BLOB_IDS + 3]
    assert snap.radius[0] == pytest.approx(0.175, abs=1e-6)


def test_plain_obstacles_fade_when_not_refreshed(server):
    srv, client = server
    client.send_message("/waterrock/obstacle", [4, 0.5, 0.3, -0.2, 0.15, 1.0, 0.0, 0.0])
    client.send_message("/waterrock/capsule", [6, 0.0, 0.2, 0.0, 0.0, 1.5, 0.0, 0.2])
    until(lambda: len(srv.latest()) == 2)
    snap = srv.latest()
    k = snap.ids.tolist().index(PLAIN_IDS + 4)
    np.testing.assert_allclose(snap.a[k], [0.5, 0.3, -0.2], atol=1e-6)
    np.testing.assert_allclose(snap.a[k], snap.b[k])
    np.testing.assert_allclose(snap.velocity[k], [1.0, 0.0, 0.0])
    assert snap.weight.tolist() == [1.0, 1.0]
    now = time.monotonic()
    mid = srv.latest(now + 0.45)  # 0.15 s into the 0.3 s fade
    assert np.all((mid.weight > 0.3) & (mid.weight < 0.7))
    assert len(srv.latest(now + 0.7)) == 0
    client.send_message("/waterrock/remove", [6])
    until(lambda: len(srv.latest()) == 1)


def test_malformed_messages_are_counted_not_fatal(server):
    srv, client = server
    client.send_message("/waterrock/obstacle", [1, 0.0, "up"])
    client.send_message("/waterrock/obstacle", [2, 0.0, 1.0, 0.0, 0.2])
    until(lambda: len(srv.latest()) == 1)
    assert srv.stats().malformed == 1 and srv.latest().ids.tolist() == [PLAIN_IDS + 2]
