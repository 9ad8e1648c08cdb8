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
a camera's visitors do when the camera stalls. Listens on 127.0.0.1 unless configured.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from waterrock.snapshots import ObstacleSnapshot
from waterrock.tracking.frame import RateLimitedLog
from waterrock.tracking.settings import TrackingSettings

log = logging.getLogger(__name__)

# id ranges, so that network obstacles never share an id with a camera's tracks
CURSOR_IDS, BLOB_IDS, PLAIN_IDS = 2_000_000, 3_000_000, 4_000_000


@dataclass
class _Obstacle:
    a: np.ndarray
    b: np.ndarray
    radius: float
    velocity: np.ndarray
    seen: float  # clock() of the last update


class _TuioProfile:
    """One TUIO profile's objects, with set/alive/fseq bundle semantics."""

    def __init__(self) -> None:
        self.objects: dict[int, tuple] = {}
        self.pending_set: dict[int, tuple] = {}
        self.pending_alive: list[int] | None = None
        self.last_fseq = -1
        self.committed = -np.inf

    def command(self, args: tuple, now: float) -> None:
        if not args:
            return
        cmd, rest = args[0], args[1:]
        if cmd == "set" and rest:
            self.pending_set[int(rest[0])] = tuple(float(x) for x in rest[1:])
        elif cmd == "alive":
            self.pending_alive = [int(x) for x in rest]
        elif cmd == "fseq" and rest:
            self._commit(int(rest[0]), now)

    def _commit(self, fseq: int, now: float) -> None:
        # -1 marks a redundant bundle (resent for UDP loss), always applied; an older frame
        # number is a late packet and is dropped, unless the sender restarted (a big jump back)
        late = fseq != -1 and 0 < self.last_fseq - fseq < 1000
        if not late:
            self.objects.update(self.pending_set)
            if self.pending_alive is not None:
                alive = set(self.pending_alive)
                self.objects = {k: v for k, v in self.objects.items() if k in alive}
            if fseq != -1:
                self.last_fseq = fseq
            self.committed = now
        self.pending_set, self.pending_alive = {}, None


class OscObstacleServer:
    """Listens for TUIO / OSC obstacles on UDP; ``latest()`` like the camera runner's."""

    def __init__(self, settings: TrackingSettings | None = None, clock: Callable[[], float] = time.monotonic):
        self.settings = s = settings or TrackingSettings()
        self._clock = clock
        self._origin = np.asarray(s.tuio_origin, np.float64)
        self._u = np.asarray(s.tuio_u, np.float64)
        self._v = np.asarray(s.tuio_v, np.float64)
        self._lock = threading.Lock()
        self._cur, self._blb = _TuioProfile(), _TuioProfile()
        self._plain: dict[int, _Obstacle] = {}
        self.messages = 0
        self.bad_messages = 0
        self._warn = RateLimitedLog(log)
        d = Dispatcher()
        d.map("/tuio/2Dcur", self._tuio(self._cur))
        d.map("/tuio/2Dblb", self._tuio(self._blb))
        d.map("/waterrock/obstacle", self._guard(self._on_sphere))
        d.map("/waterrock/capsule", self._guard(self._on_capsule))
        d.map("/waterrock/remove", self._guard(self._on_remove))
        d.set_default_handler(lambda address, *args: None)  # other TUIO profiles: not ours
        self._dispatcher = d
        self._server: BlockingOSCUDPServer | None = None
        self._thread: threading.Thread | None = None

    # --- network side ----------------------------------------------------------------

    def start(self) -> OscObstacleServer:
        s = self.settings
        self._server = BlockingOSCUDPServer((s.osc_host, s.osc_port), self._dispatcher)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="osc", daemon=True
        )
        self._thread.start()
        log.info("listening for TUIO/OSC obstacles on %s:%d", *self.address)
        return self

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

    def __enter__(self) -> OscObstacleServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _guard(self, handler):
        def wrapped(address: str, *args) -> None:
            try:
                with self._lock:
                    handler(*args)
                    self.messages += 1
            except (ValueError, TypeError, IndexError) as err:
                self.bad_messages += 1
                self._warn.warning("OSC: ignored malformed %s %s: %s", address, args, err)

        return wrapped

    def _tuio(self, profile: _TuioProfile):
        return self._guard(lambda *args: profile.command(args, self._clock()))

    def _on_sphere(self, oid, x, y, z, radius, *vel) -> None:
        p = np.array([x, y, z], np.float64)
        self._plain[int(oid)] = _Obstacle(p, p.copy(), float(radius), self._vel(vel), self._clock())

    def _on_capsule(self, oid, ax, ay, az, bx, by, bz, radius, *vel) -> None:
        self._plain[int(oid)] = _Obstacle(
            np.array([ax, ay, az], np.float64),
            np.array([bx, by, bz], np.float64),
            float(radius),
            self._vel(vel),
            self._clock(),
        )

    def _on_remove(self, oid) -> None:
        self._plain.pop(int(oid), None)

    @staticmethod
    def _vel(vel) -> np.ndarray:
        if len(vel) not in (0, 3):
            raise ValueError("velocity needs vx vy vz")
        return np.array(vel if vel else (0.0, 0.0, 0.0), np.float64)

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
        gone = [r[0] - PLAIN_IDS for r, k in zip(rows, keep, strict=True) if not k and r[0] >= PLAIN_IDS]
        if gone and prune:
            with self._lock:  # faded out: forget them, or a long night's ids pile up
                for oid in gone:
                    if oid in self._plain and now - self._plain[oid].seen > s.osc_timeout + s.fade_time:
                        del self._plain[oid]
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
