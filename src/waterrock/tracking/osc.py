"""Obstacles over the network: TUIO 1.1 (/tuio/2Dcur, /tuio/2Dblb) and plain OSC messages.

Another tracker (a LiDAR people counter, a touch wall, TouchDesigner) can place visitors in
the water. TUIO follows its frame semantics (Kaltenbrunner et al. 2005, TUIO 1.1): ``set``
messages update objects, ``alive`` lists the session ids still present, and ``fseq`` commits
the bundle; a bundle older than the last committed one is dropped. Normalised TUIO (x, y) is
mapped to the scene by ``origin + x * u + y * v``. Plain messages are in scene metres:

  /waterrock/obstacle  id x y z radius [vx vy vz]          a sphere
  /waterrock/capsule   id ax ay az bx by bz radius [vx vy vz]
  /waterrock/remove    id

An object that is not refreshed for ``osc_timeout`` seconds fades out over ``fade_time``, as
a camera's visitors do when the camera stalls. Listens on 127.0.0.1 unless configured, and
beyond this machine hears only the senders in ``osc_allow``.

No packet can switch the network visitors off: a bundle's time tag is not waited for, and what
cannot be read (a value missing or not finite, an id out of range, random bytes), what comes
beyond ``osc_max_rate`` messages a second or ``osc_max_objects`` live objects, and what comes
from a sender not allowed is dropped and counted (``stats()``), with a line in the log now and
then, never a traceback.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pythonosc
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_packet import OscPacket
from pythonosc.osc_server import BlockingOSCUDPServer

from waterrock.rate_limit import RateLimitedLog
from waterrock.snapshots import ObstacleSnapshot
from waterrock.tracking.settings import TrackingSettings

log = logging.getLogger(__name__)

# id ranges, so that network obstacles never share an id with a camera's tracks
CURSOR_IDS, BLOB_IDS, PLAIN_IDS = 2_000_000, 3_000_000, 4_000_000
ID_SPAN = 1_000_000  # the ids one range holds: an id is folded into it (id mod ID_SPAN)
LARGEST_ID = 2**31 - 1  # TUIO session ids are OSC int32s; they only grow over a long night
LARGEST_VALUE = 1e4  # metres, m/s, TUIO units: no venue is 10 km across, and float32 ends at 3.4e38
# the values a TUIO ``set`` must carry after its session id, those read here:
TUIO_VALUES = {"/tuio/2Dcur": 4, "/tuio/2Dblb": 8}  # x y X Y; x y angle w h area X Y
PYTHONOSC_DIR = str(Path(pythonosc.__file__).parent)
PLAIN_USAGE = {
    "/waterrock/obstacle": "id x y z radius [vx vy vz]",
    "/waterrock/capsule": "id ax ay az bx by bz radius [vx vy vz]",
    "/waterrock/remove": "id",
}


def heard(host: str, allowed, loopback: bool = False) -> bool:
    """Whether a sender at ``host`` is in ``allowed`` (networks), or on this machine when
    ``loopback``; an IPv4 sender on a dual-stack socket is too."""
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (loopback and ip.is_loopback) or any(ip in net for net in allowed)

class Malformed(ValueError):
    """A message that cannot be read as what its address says: counted and dropped."""


@dataclass(frozen=True)
class OscStats:
    """What an overlay shows: the messages applied, and each kind dropped."""

    messages: int  # applied in full
    malformed: int  # unreadable packets; messages with a value missing, not a number, not finite, or an id out of range
    over_rate: int  # messages beyond osc_max_rate a second (a packet left unread once the second's budget is spent: 1)
    over_capacity: int  # new objects beyond osc_max_objects
    refused: int  # packets from senders not in osc_allow


def object_id(value) -> int:
    """A TUIO session id or a plain obstacle's id, folded into its range: a whole number in
    0..LARGEST_ID (a float one too: some senders send every number as a float). An id of 1e300
    made a snapshot's int64 ids overflow; one past ID_SPAN would land in the next range's ids."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Malformed(f"id {value!r} is not a number")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise Malformed(f"id {value!r} is not a whole number")
    if not 0 <= value <= LARGEST_ID:
        raise Malformed(f"id {value!r} is outside 0..{LARGEST_ID}")
    return int(value) % ID_SPAN


def finite_values(values, what: str) -> list[float]:
    """``values`` as floats, each finite and within LARGEST_VALUE: a NaN or a 1e300 (inf once it
    is float32) would put a poisoned obstacle in the water."""
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise Malformed(f"{what}: {v!r} is not a number")
        if not abs(v) <= LARGEST_VALUE:  # NaN fails this too
            raise Malformed(f"{what}: {v!r} is not a finite number within {LARGEST_VALUE:g}")
        out.append(float(v))
    return out


@dataclass
class _Obstacle:
    a: np.ndarray
    b: np.ndarray
    radius: float
    velocity: np.ndarray
    seen: float  # clock() of the last update


class _TuioProfile:
    """One TUIO profile's objects, with set/alive/fseq bundle semantics."""

    def __init__(self, values: int) -> None:
        self.values = values  # the values a ``set`` carries after its session id
        self.objects: dict[int, tuple] = {}
        self.pending_set: dict[int, tuple] = {}
        self.pending_alive: list[int] | None = None
        self.last_fseq = -1
        self.committed = -np.inf

    def command(self, args: tuple, now: float, room: int) -> int:
        """Apply one message; the number of new objects dropped for want of ``room`` (how many
        objects this profile may hold)."""
        cmd, rest = (args[0], args[1:]) if args else (None, ())
        if cmd == "set":
            return self._set(rest, room)
        if cmd == "alive":
            self.pending_alive = [object_id(x) for x in rest]
        elif cmd == "fseq":
            if len(rest) != 1 or isinstance(rest[0], bool) or not isinstance(rest[0], int):
                raise Malformed(f"fseq needs one whole frame number, got {rest!r}")
            return self._commit(rest[0], now, room)
        elif cmd != "source":
            raise Malformed(f"{cmd!r} is not a TUIO 1.1 command (source, alive, set, fseq)")
        return 0

    def _set(self, rest: tuple, room: int) -> int:
        if len(rest) < 1 + self.values:
            raise Malformed(f"set needs a session id and {self.values} values, got {len(rest)} values")
        sid = object_id(rest[0])
        values = tuple(finite_values(rest[1 : 1 + self.values], "set"))
        if sid not in self.pending_set and len(self.pending_set) >= room:
            return 1
        self.pending_set[sid] = values
        return 0

    def _commit(self, fseq: int, now: float, room: int) -> int:
        # -1 marks a redundant bundle (resent for UDP loss), always applied; an older frame
        # number is a late packet and is dropped, unless the sender restarted (a big jump back)
        late = fseq != -1 and 0 < self.last_fseq - fseq < 1000
        dropped = 0
        if not late:
            objects = {**self.objects, **self.pending_set}
            if self.pending_alive is not None:
                alive = set(self.pending_alive)
                objects = {k: v for k, v in objects.items() if k in alive}
            # who is already in the water stays; newcomers take what room is left
            order = sorted(objects, key=lambda k: k not in self.objects)
            dropped = max(len(order) - room, 0)
            self.objects = {k: objects[k] for k in order[:room]}
            if fseq != -1:
                self.last_fseq = fseq
            self.committed = now
        self.pending_set, self.pending_alive = {}, None
        return dropped


class _PythonOscWarnings(logging.Filter):
    """python-osc reports a part of a packet it cannot read on the root logger, one line a packet
    with the whole packet in it: random bytes flooded the log. On the listener's thread those
    lines are counted here instead, and the packet dropped as malformed."""

    def __init__(self) -> None:
        super().__init__()
        self.thread: int | None = None
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self.thread or not record.pathname.startswith(PYTHONOSC_DIR):
            return True
        self.count += 1
        return False


class _Listener(BlockingOSCUDPServer):
    """python-osc's UDP server (it picks IPv4 or IPv6 for the host), each datagram handed whole to
    ``receive``, not to a Dispatcher: python-osc's Dispatcher sleeps until a bundle's time tag (one
    bundle tagged a day ahead put the listener to sleep for a day), passes over non-OSC bytes
    without a count, and lets socketserver print a traceback for a packet that breaks its parser."""

    def __init__(self, address: tuple[str, int], receive: Callable[[bytes, tuple], None], failed) -> None:
        super().__init__(address, Dispatcher())  # required by the base class, never called
        self._receive = receive
        self._failed = failed

    def verify_request(self, request, client_address) -> bool:
        return True  # anything is counted, bytes that are not OSC too

    def process_request(self, request, client_address) -> None:
        self._receive(request[0], client_address)

    def handle_error(self, request, client_address) -> None:
        self._failed(client_address)


class OscObstacleServer:
    """Listens for TUIO / OSC obstacles on UDP; ``latest()`` like the camera runner's."""

    def __init__(self, settings: TrackingSettings | None = None, clock: Callable[[], float] = time.monotonic):
        self.settings = s = settings or TrackingSettings()
        self._clock = clock
        self._origin = np.asarray(s.tuio_origin, np.float64)
        self._u = np.asarray(s.tuio_u, np.float64)
        self._v = np.asarray(s.tuio_v, np.float64)
        self._lock = threading.Lock()
        self._cur = _TuioProfile(TUIO_VALUES["/tuio/2Dcur"])
        self._blb = _TuioProfile(TUIO_VALUES["/tuio/2Dblb"])
        self._plain: dict[int, _Obstacle] = {}
        self._allowed = [ipaddress.ip_network(a, strict=False) for a in s.osc_allow]
        self._counts = dict.fromkeys(("messages", "malformed", "over_rate", "over_capacity", "refused"), 0)
        self._second = (-np.inf, 0)  # the rate's window: when it began, messages read in it
        self._warn = RateLimitedLog(log)
        self._parse_warnings = _PythonOscWarnings()
        self._routes = {
            "/tuio/2Dcur": self._tuio(self._cur),
            "/tuio/2Dblb": self._tuio(self._blb),
            "/waterrock/obstacle": self._on_sphere,
            "/waterrock/capsule": self._on_capsule,
            "/waterrock/remove": self._on_remove,
        }  # other addresses (other TUIO profiles): not ours, passed over
        self._server: _Listener | None = None
        self._thread: threading.Thread | None = None

    def stats(self) -> OscStats:
        """The counts so far, for an overlay. Never blocks."""
        return OscStats(**self._counts)

    # --- network side ----------------------------------------------------------------

    def start(self) -> OscObstacleServer:
        s = self.settings
        self._server = _Listener((s.osc_host, s.osc_port), self._receive, self._failed)
        logging.getLogger().addFilter(self._parse_warnings)
        self._thread = threading.Thread(target=self._serve, name="osc", daemon=True)
        self._thread.start()
        log.info("listening for TUIO/OSC obstacles on %s:%d", *self.address)
        return self

    def _serve(self) -> None:
        self._parse_warnings.thread = threading.get_ident()
        self._server.serve_forever(0.05)

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the OSC server is not started")
        return self._server.server_address[:2]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(1.0)
        logging.getLogger().removeFilter(self._parse_warnings)

    def __enter__(self) -> OscObstacleServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _receive(self, data: bytes, sender: tuple) -> None:
        """One datagram, on the listener's thread: from a sender heard, within the rate, read whole
        or not at all; each message applied now, whatever its bundle's time tag says."""
        if self._allowed and not self._heard(sender[0]):
            self._drop("refused", 1, sender, "a sender not in osc_allow")
            return
        if not self._within_rate(1):
            self._drop("over_rate", 1, sender, f"beyond osc_max_rate ({self.settings.osc_max_rate}/s)")
            return
        warned = self._parse_warnings.count
        try:
            messages = [m.message for m in OscPacket(data).messages]
        except Exception as err:  # noqa: BLE001 - python-osc's parser raises more than ParseError on garbage
            self._drop("malformed", 1, sender, f"an unreadable packet ({type(err).__name__})")
            return
        if self._parse_warnings.count != warned:
            self._drop("malformed", 1, sender, "a packet with an unreadable part")
            return
        if not self._within_rate(max(len(messages) - 1, 0)):
            self._drop("over_rate", len(messages), sender, f"beyond osc_max_rate ({self.settings.osc_max_rate}/s)")
            return
        for m in messages:
            self._apply(m.address, tuple(m.params), sender)

    def _heard(self, host: str) -> bool:
        return heard(host, self._allowed)

    def _within_rate(self, n: int) -> bool:
        """Count ``n`` more messages into this second; False (nothing counted) past the cap: a
        flood costs the reading of one packet's head, not the parsing of it all."""
        start, count = self._second
        now = self._clock()
        if now - start >= 1.0:
            start, count = now, 0
        if count + n > self.settings.osc_max_rate:
            self._second = (start, count)
            return False
        self._second = (start, count + n)
        return True

    def _apply(self, address: str, args: tuple, sender: tuple) -> None:
        route = self._routes.get(address)
        if route is None:
            return
        try:
            with self._lock:
                dropped = route(*args)
        except (ValueError, TypeError, ArithmeticError) as err:
            arity = isinstance(err, TypeError) and address in PLAIN_USAGE  # a value too many or too few
            reason = f"needs {PLAIN_USAGE[address]}" if arity else str(err)
            self._drop("malformed", 1, sender, f"{address} {args!r}"[:160] + f": {reason}")
            return
        if dropped:
            limit = self.settings.osc_max_objects
            self._drop("over_capacity", dropped, sender, f"{address}: beyond osc_max_objects ({limit})")
        else:
            self._counts["messages"] += 1

    def _drop(self, cause: str, n: int, sender: tuple, what: str) -> None:
        """Count ``n`` dropped for ``cause``; a line in the log now and then, with the counts."""
        self._counts[cause] += n
        c = self._counts
        self._warn.warning(
            "OSC from %s: dropped %s (so far: %d malformed, %d over the rate, %d over capacity, %d refused)",
            sender[0], what, c["malformed"], c["over_rate"], c["over_capacity"], c["refused"],
        )

    def _failed(self, sender: tuple) -> None:
        """What the handlers above did not foresee: counted and logged, the listener goes on."""
        self._drop("malformed", 1, sender, "a packet that broke its handler")

    def _tuio(self, profile: _TuioProfile):
        return lambda *args: profile.command(args, self._clock(), self._room(profile))

    def _live(self) -> int:
        return len(self._cur.objects) + len(self._blb.objects) + len(self._plain)

    def _full(self) -> bool:
        """Whether osc_max_objects are live, once what has faded out is forgotten."""
        if self._live() >= self.settings.osc_max_objects:
            self._forget_faded(self._clock())
        return self._live() >= self.settings.osc_max_objects

    def _room(self, profile: _TuioProfile) -> int:
        """How many objects ``profile`` may hold: what the others leave of osc_max_objects."""
        self._full()
        return self.settings.osc_max_objects - (self._live() - len(profile.objects))

    def _place(self, oid: int, obstacle: _Obstacle) -> int:
        """Add or update a plain obstacle; 1 if it is new and there is no room for it."""
        if oid not in self._plain and self._full():
            return 1
        self._plain[oid] = obstacle
        return 0

    def _forget_faded(self, now: float) -> None:
        """Forget what has faded out of the water: a long night's ids must not fill the room.
        Called with the lock held."""
        s = self.settings
        gone_after = s.osc_timeout + s.fade_time
        for profile in (self._cur, self._blb):
            if profile.objects and now - profile.committed > gone_after:
                profile.objects = {}
        for oid in [k for k, o in self._plain.items() if now - o.seen > gone_after]:
            del self._plain[oid]

    def _on_sphere(self, oid, x, y, z, radius, *vel) -> int:
        p = np.array(finite_values((x, y, z), "position"))
        return self._place(object_id(oid), _Obstacle(p, p.copy(), self._radius(radius), self._vel(vel), self._clock()))

    def _on_capsule(self, oid, ax, ay, az, bx, by, bz, radius, *vel) -> int:
        a = np.array(finite_values((ax, ay, az), "a"))
        b = np.array(finite_values((bx, by, bz), "b"))
        return self._place(object_id(oid), _Obstacle(a, b, self._radius(radius), self._vel(vel), self._clock()))

    def _on_remove(self, oid) -> int:
        self._plain.pop(object_id(oid), None)
        return 0

    @staticmethod
    def _radius(radius) -> float:
        (r,) = finite_values((radius,), "radius")
        if r <= 0.0:
            raise Malformed(f"radius {r} is not positive")
        return r

    @staticmethod
    def _vel(vel) -> np.ndarray:
        if len(vel) not in (0, 3):
            raise Malformed("velocity needs vx vy vz")
        return np.array(finite_values(vel, "velocity") if vel else (0.0, 0.0, 0.0), np.float64)

    # --- the mapping -----------------------------------------------------------------

    def tuio_to_scene(self, x: float, y: float) -> np.ndarray:
        return self._origin + x * self._u + y * self._v

    def _standing(self, p: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
        h = self.settings.osc_height
        if h <= 2 * r:
            return p + [0.0, r, 0.0], p + [0.0, r, 0.0]
        return p + [0.0, r, 0.0], p + [0.0, h - r, 0.0]

    # --- the frame loop's side -------------------------------------------------------

    def latest(self, now: float | None = None) -> ObstacleSnapshot:
        """The obstacles at ``now`` (default: the clock), faded where not refreshed."""
        prune = now is None  # a look at another instant must not forget anything
        now = self._clock() if now is None else now
        s = self.settings
        with self._lock:
            cursors, cur_t = dict(self._cur.objects), self._cur.committed
            blobs, blb_t = dict(self._blb.objects), self._blb.committed
            plain = dict(self._plain)
        rows = []  # (id, a, b, radius, velocity, last update)
        for sid, (x, y, vx, vy, *_) in cursors.items():
            a, b = self._standing(self.tuio_to_scene(x, y), s.osc_radius)
            rows.append((CURSOR_IDS + sid, a, b, s.osc_radius, vx * self._u + vy * self._v, cur_t))
        for sid, (x, y, _angle, w, h, _area, vx, vy, *_) in blobs.items():
            r = 0.25 * (w * np.linalg.norm(self._u) + h * np.linalg.norm(self._v))  # mean half extent
            r = float(np.clip(r, s.min_radius, s.max_radius))
            a, b = self._standing(self.tuio_to_scene(x, y), r)
            rows.append((BLOB_IDS + sid, a, b, r, vx * self._u + vy * self._v, blb_t))
        for oid, o in plain.items():
            rows.append((PLAIN_IDS + oid, o.a, o.b, o.radius, o.velocity, o.seen))
        age = now - np.array([r[5] for r in rows]) if rows else np.zeros(0)
        weight = np.clip(1.0 - (age - s.osc_timeout) / s.fade_time, 0.0, 1.0)
        keep = weight > 0
        if prune and not np.all(keep):
            with self._lock:
                self._forget_faded(now)
        if not np.any(keep):
            return ObstacleSnapshot.empty(now)
        rows = [r for r, k in zip(rows, keep, strict=True) if k]
        return ObstacleSnapshot(
            timestamp=now,
            a=[r[1] for r in rows],
            b=[r[2] for r in rows],
            radius=[r[3] for r in rows],
            velocity=[r[4] for r in rows],
            ids=[r[0] for r in rows],
            weight=weight[keep],
        )
