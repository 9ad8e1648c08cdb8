"""OSC that cannot poison: real UDP packets on loopback to the real listener, each fault of issue 20
once. One packet (a bundle for tomorrow, a short TUIO ``set``, an id of 1e300, random bytes) must
not switch the network visitors off; a flood is capped; a listener beyond this machine hears only
the senders the scene names."""

from __future__ import annotations

import logging
import socket
import threading
import time

import numpy as np
import pytest
from pydantic import ValidationError
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from tests.tracking.test_osc import msg, tuio_bundle, until
from waterrock.tracking.osc import CURSOR_IDS, PLAIN_IDS, OscObstacleServer
from waterrock.tracking.settings import TrackingSettings

pytestmark = pytest.mark.timeout(60)  # a listener put to sleep must fail the test, not hang the suite


def stop_within(srv: OscObstacleServer, timeout: float = 5.0) -> None:
    """Stop the listener from another thread: a listener asleep in a handler would never stop."""
    t = threading.Thread(target=srv.stop, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "the OSC listener did not stop: its thread is asleep in a packet"


def serve(clock=time.monotonic, **kw) -> tuple[OscObstacleServer, SimpleUDPClient]:
    settings = TrackingSettings(**{"osc": True, "osc_port": 0, **kw})
    srv = OscObstacleServer(settings, clock=clock).start()
    return srv, SimpleUDPClient(*srv.address)


@pytest.fixture
def server():
    srv, client = serve()
    yield srv, client
    stop_within(srv)


def sphere(oid, y: float = 1.0):
    """A plain sphere; a float id goes as a 64-bit double, as a sender may send 1e300."""
    m = OscMessageBuilder("/waterrock/obstacle")
    m.add_arg(oid, "d" if isinstance(oid, float) else None)
    for v in (0.0, y, 0.0, 0.2):
        m.add_arg(v)
    return m.build()


def test_a_bundle_timed_a_day_ahead_is_applied_now(server):
    """python-osc's Dispatcher sleeps until a bundle's time tag: one bundle for tomorrow put the
    only listener thread to sleep for a day. A visitor is now; the tag is ignored."""
    srv, client = server
    tomorrow = OscBundleBuilder(time.time() + 86400.0)
    tomorrow.add_content(sphere(1))
    client.send(tomorrow.build())
    client.send(sphere(2))
    until(lambda: sorted(srv.latest().ids.tolist()) == [PLAIN_IDS + 1, PLAIN_IDS + 2])


def test_a_tuio_set_with_too_few_values_is_dropped_and_counted(server):
    """A ``set`` with only an x made ``latest()`` raise on every frame until an ``alive`` cleared
    it. It is malformed: counted and dropped, and the good cursor of the same bundle stays."""
    srv, client = server
    client.send(tuio_bundle("/tuio/2Dcur", 1, {5: (0.5,), 6: (0.5, 0.5, 0.0, 0.0, 0.0)}, [5, 6]))
    until(lambda: len(srv.latest()) == 1)
    assert srv.latest().ids.tolist() == [CURSOR_IDS + 6]
    assert srv.stats().malformed == 1


def test_an_id_of_1e300_is_malformed_not_an_overflow(server):
    """An id of 1e300 raised OverflowError in ``latest()`` until the obstacle faded (a second).
    Ids are whole numbers within TUIO's int32; anything else is malformed; and an id wider than
    its range's span is folded into it, so it never lands among another range's ids."""
    srv, client = server
    for bad in (1e300, float("inf"), float("nan"), -1, 2.5):
        client.send(sphere(bad))
    huge = OscBundleBuilder(IMMEDIATELY)
    set_huge = OscMessageBuilder("/tuio/2Dcur")
    for v, kind in (("set", None), (1e300, "d"), (0.5, None), (0.5, None), (0.0, None), (0.0, None)):
        set_huge.add_arg(v, kind)
    huge.add_content(set_huge.build())
    huge.add_content(msg("/tuio/2Dcur", "fseq", 1))
    client.send(huge.build())
    client.send(sphere(2_000_000_003))  # a long night's TUIO-style id: allowed, kept in its range
    until(lambda: len(srv.latest()) == 1)
    (oid,) = srv.latest().ids.tolist()
    assert PLAIN_IDS <= oid < PLAIN_IDS + 1_000_000
    until(lambda: srv.stats().malformed == 6)  # five spheres and the cursor


def test_random_bytes_are_counted_without_tracebacks(server, capfd, caplog):
    """Random bytes printed hundreds of tracebacks to stderr, outside the log (socketserver's
    handle_error), and python-osc put each unreadable packet, whole, on the root logger. Each is
    counted; the log gets a rate-limited line; the listener goes on."""
    srv, client = server
    rng = np.random.default_rng(20)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    heads = [b"/", b"#bundle\x00", b"/tuio/2Dcur\x00,", b"/waterrock/obstacle\x00\x00\x00\x00,"]
    with caplog.at_level(logging.WARNING), sender:
        for k in range(400):
            body = rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8).tobytes()
            sender.sendto(heads[k % len(heads)] + body, srv.address)
            if k % 50 == 0:
                time.sleep(0.01)  # within the socket's buffer: nothing lost before it is read
        until(lambda: (client.send(sphere(9)), len(srv.latest()) == 1)[1])
    err = capfd.readouterr().err
    assert "Traceback" not in err, err[:2000]
    assert srv.stats().malformed > 100
    ours = [r for r in caplog.records if r.name == "waterrock.tracking.osc"]
    assert 1 <= len(ours) <= 3, [r.getMessage() for r in ours]
    assert not [r for r in caplog.records if r.name == "root"], "python-osc's per-packet lines reached the log"


def test_live_objects_are_capped():
    """Every id a sender makes up was a new obstacle: a cap on live objects, beyond it counted."""
    srv, client = serve(osc_max_objects=4)
    try:
        for oid in range(10):
            client.send(sphere(oid))
        until(lambda: srv.stats().messages + srv.stats().over_capacity == 10)
        assert len(srv.latest()) == 4 and srv.stats().over_capacity == 6
        client.send(msg("/waterrock/remove", 0))  # room for one more
        sets = {sid: (0.5, 0.5, 0.0, 0.0, 0.0) for sid in range(10)}
        client.send(tuio_bundle("/tuio/2Dcur", 1, sets, list(sets)))
        until(lambda: srv.stats().over_capacity == 15)
        assert len(srv.latest()) == 4
    finally:
        stop_within(srv)


def test_messages_beyond_the_rate_are_dropped_and_counted():
    """A flood is capped at ``osc_max_rate`` messages a second; the rest are counted, not read."""
    now = [100.0]
    srv, client = serve(clock=lambda: now[0], osc_max_rate=50, osc_max_objects=500)
    try:
        for oid in range(120):
            client.send(sphere(oid))
        until(lambda: srv.stats().messages + srv.stats().over_rate == 120)
        assert srv.stats().messages == 50 and srv.stats().over_rate == 70
        now[0] += 1.0  # the next second: heard again
        client.send(sphere(500))
        until(lambda: srv.stats().messages == 51)
    finally:
        stop_within(srv)


def test_a_non_local_listener_needs_an_allow_list():
    with pytest.raises(ValidationError, match="osc_allow"):
        TrackingSettings(osc=True, osc_host="0.0.0.0")
    with pytest.raises(ValidationError, match="osc_allow"):
        TrackingSettings(osc=True, osc_host="0.0.0.0", osc_allow=("a touch wall",))
    s = TrackingSettings(osc=True, osc_host="0.0.0.0", osc_allow=("192.168.1.20", "10.0.0.0/24"))
    assert s.osc_allow == ("192.168.1.20", "10.0.0.0/24")
    assert TrackingSettings(osc=True, osc_host="localhost").osc_allow == ()


def test_senders_not_in_the_allow_list_are_dropped_and_counted():
    srv, client = serve(osc_allow=("10.1.2.3",))
    heard, _ = serve(osc_allow=("127.0.0.0/8",))
    try:
        for s in (srv, heard):
            SimpleUDPClient(*s.address).send(sphere(1))
        until(lambda: len(heard.latest()) == 1)
        until(lambda: srv.stats().refused == 1)
        assert len(srv.latest()) == 0 and srv.stats().messages == 0
    finally:
        stop_within(srv)
        stop_within(heard)
