"""Portals: water handed over between works, none lost, none doubled (DESIGN.md).

Each outgoing portal is a ZeroMQ DEALER connected to the peer's inflow, a ROUTER bound to
127.0.0.1 unless the scene names another interface (the ZeroMQ guide's asynchronous
client-server pattern, with the reliability of its "Lazy Pirate" and "Binary Star" chapters:
sequence numbers, acknowledgements, resends, and a receiver that drops what it has seen).

Once a frame, :meth:`PortalLinks.exchange` takes what the solver's outgoing portals retired
(``solver/portals.py``), sends it as one batch per portal (moved into the peer's frame),
collects acknowledgements, sends again what is unacknowledged after ``RESEND_S``, and brings
in what the inflows received. The sockets' I/O runs on ZeroMQ's own threads, outside the
interpreter's lock; the frame loop only polls, never waits.

The books of an outgoing portal always balance: ``sent = acknowledged + drained + in_flight``.
``drained`` is the water the portal retired as a sink: while ``window`` batches are in flight
unacknowledged (the peer gone, slow or restarting), new water is drained rather than queued,
and what the peer refused for lack of room in its budget is drained too. Water that the
transform puts outside the peer's domain comes in at the domain's edge there, counted as
``clamped`` and warned of. An inflow acknowledges every batch with how many particles it
took; a batch it has seen (a resend whose first acknowledgement was lost) is acknowledged again
and not taken twice.
A restarted peer is a new ``epoch``: the acknowledgements are kept per epoch, so the books
say what each run of the peer took.
"""

from __future__ import annotations

import collections
import logging
import math
import time
import uuid

import numpy as np
import trimesh
import zmq

from waterrock.net.wire import Ack, BadMessage, Batch
from waterrock.rate_limit import RateLimitedLog

log = logging.getLogger(__name__)

RESEND_S = 0.25  # an unacknowledged batch is sent again after this long
SEEN_MAX = 1 << 16  # batches an inflow remembers, to drop repeats
LOG_EVERY_S = 10.0


class PortalError(RuntimeError):
    """A portal that cannot open (its port taken); the message says which and why."""


def transform_matrix(t) -> np.ndarray:
    """The 4x4 of a PortalTransform: rotations about x, y, z in that order, then the move (the
    order of a scene's rock transform)."""
    m = np.eye(4)
    for axis, deg in zip(np.eye(3), t.rotate_deg, strict=True):
        m = trimesh.transformations.rotation_matrix(math.radians(deg), axis) @ m
    m[:3, 3] += t.translate
    return m


class Outgoing:
    """One outgoing portal's link to its peer."""

    def __init__(self, context: zmq.Context, portal, sender: str):
        self.portal = portal
        self.name, self.peer, self.peer_portal = portal.name, portal.peer, portal.peer_portal
        self.window = portal.window
        self.sender = sender
        self.matrix = transform_matrix(portal.transform)
        self.sock = context.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.IMMEDIATE, 1)  # no queue toward a peer that is not there: the window decides
        self.sock.setsockopt(zmq.SNDHWM, 4 * self.window)
        self.sock.connect(self.peer)
        self.in_flight: collections.OrderedDict[int, list] = collections.OrderedDict()  # seq -> [batch, last sent]
        self.seq = 0
        self.next_id = 0
        self.sent = self.acknowledged = self.drained = self.refused = self.resent = self.bad = 0
        self.by_epoch: collections.Counter[str] = collections.Counter()
        self.said = RateLimitedLog(log).say

    @property
    def in_flight_particles(self) -> int:
        return sum(len(b.ids) for b, _ in self.in_flight.values())

    def hand_over(self, positions: np.ndarray, velocities: np.ndarray) -> None:
        n = len(positions)
        if n == 0:
            return
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.uint64)
        self.next_id += n
        self.sent += n
        if len(self.in_flight) >= self.window:
            self.drained += n
            self.said(logging.WARNING, "drain", "portal %s: %d hand-overs to %s unacknowledged: draining its water "
                      "as a sink until the peer answers", self.name, len(self.in_flight), self.peer)
            return
        r, t = self.matrix[:3, :3], self.matrix[:3, 3]
        batch = Batch(self.sender, self.peer_portal, self.seq, ids, (positions @ r.T + t).astype(np.float32),
                      (velocities @ r.T).astype(np.float32))
        self.in_flight[self.seq] = [batch, -math.inf]
        self.seq += 1

    def pump(self, now: float) -> None:
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            try:
                ack = Ack.parse(frames)
                entry = self.in_flight.get(ack.seq)
                if entry is not None and ack.accepted > len(entry[0].ids):
                    raise BadMessage(f"acknowledges {ack.accepted} of a batch of {len(entry[0].ids)}")
            except BadMessage as err:
                self.bad += 1
                self.said(logging.WARNING, "bad", "portal %s: dropped a message from %s: %s", self.name, self.peer, err)
                continue
            if entry is None:
                continue  # the acknowledgement of a resend already acknowledged
            del self.in_flight[ack.seq]
            n = len(entry[0].ids)
            self.acknowledged += ack.accepted
            self.by_epoch[ack.epoch] += ack.accepted
            if ack.accepted < n:
                self.refused += n - ack.accepted
                self.drained += n - ack.accepted
        for entry in self.in_flight.values():
            batch, last = entry
            if now - last < RESEND_S:
                continue
            try:
                self.sock.send_multipart(batch.frames(), zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break  # the peer is not there (or is full): try again later
            if last > -math.inf:
                self.resent += 1
            entry[1] = now

    def counters(self) -> dict:
        return {"portal": self.name, "direction": "out", "peer": self.peer, "sent": self.sent,
                "acknowledged": self.acknowledged, "drained": self.drained, "refused": self.refused,
                "in_flight": self.in_flight_particles, "resent": self.resent, "bad": self.bad,
                "by_epoch": dict(self.by_epoch)}

    def close(self) -> None:
        self.sock.close(0)


class Inflow:
    """One inflow: receives batches, brings them into the solver, acknowledges them."""

    def __init__(self, context: zmq.Context, portal, epoch: str, domain, spacing: float, record_ids: bool = False):
        self.portal, self.name, self.epoch = portal, portal.name, epoch
        self.endpoint = f"tcp://{portal.interface}:{portal.port}"
        inset = 0.5 * spacing  # off the walls, where the boundary would push a particle at once
        self.lower = np.asarray(domain.lower, np.float32) + inset
        self.upper = np.asarray(domain.upper, np.float32) - inset
        self.sock = context.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        try:
            self.sock.bind(self.endpoint)
        except zmq.ZMQError as err:
            self.sock.close(0)
            raise PortalError(f"inflow {self.name!r} cannot listen on {self.endpoint}: {err}") from None
        self.seen: collections.OrderedDict[tuple[str, int], int] = collections.OrderedDict()
        self.received = self.refused = self.batches = self.duplicates = self.bad = self.clamped = 0
        self.ids: list[tuple[str, np.ndarray]] | None = [] if record_ids else None  # each taken's sender, id
        self.said = RateLimitedLog(log).say

    def pump(self, solver) -> None:
        fresh = []  # (identity, batch)
        pending = set()  # their keys: a repeat within this pump is dropped too
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            identity, body = frames[0], frames[1:]
            try:
                batch = Batch.parse(body)
                if batch.portal != self.name:
                    raise BadMessage(f"for portal {batch.portal!r}, this is {self.name!r}")
            except BadMessage as err:
                self.bad += 1
                self.said(logging.WARNING, "bad", "inflow %s: dropped a message: %s", self.name, err)
                continue
            key = (batch.sender, batch.seq)
            if key in self.seen:
                self.duplicates += 1
                self._ack(identity, batch, self.seen[key])
                continue
            if key in pending:
                self.duplicates += 1
                continue
            pending.add(key)
            fresh.append((identity, batch))
        if not fresh:
            return
        positions = np.concatenate([b.positions for _, b in fresh])
        velocities = np.concatenate([b.velocities for _, b in fresh])
        # water the peer's transform puts outside this domain comes in at its nearest point inside
        inside = np.clip(positions, self.lower, self.upper)
        off = np.linalg.norm(inside - positions, axis=1)
        if off.any():
            self.clamped += int(np.count_nonzero(off))
            self.said(logging.WARNING, "clamped", "inflow %s: %d particles arrived outside the domain (up to %.2f m): "
                      "brought in at its edge; check the peer portal's transform", self.name,
                      int(np.count_nonzero(off)), float(off.max()))
        taken = solver.inject(inside, velocities)
        start = 0
        for identity, batch in fresh:
            n = len(batch.ids)
            mine = taken[start:start + n]
            start += n
            accepted = int(mine.sum())
            self.batches += 1
            self.received += accepted
            self.refused += n - accepted
            if self.ids is not None:
                self.ids.append((batch.sender, batch.ids[mine]))
            self.seen[(batch.sender, batch.seq)] = accepted
            while len(self.seen) > SEEN_MAX:
                self.seen.popitem(last=False)
            self._ack(identity, batch, accepted)

    def _ack(self, identity: bytes, batch: Batch, accepted: int) -> None:
        try:
            self.sock.send_multipart([identity, *Ack(batch.portal, batch.seq, accepted, self.epoch).frames()],
                                     zmq.NOBLOCK)
        except zmq.Again:
            pass  # the sender will send the batch again, and be acknowledged then

    def counters(self) -> dict:
        return {"portal": self.name, "direction": "in", "endpoint": self.endpoint, "epoch": self.epoch,
                "received": self.received, "refused": self.refused, "batches": self.batches,
                "duplicates": self.duplicates, "bad": self.bad, "clamped": self.clamped}

    def close(self) -> None:
        self.sock.close(0)


class PortalLinks:
    """The scene's portals, joined to their peers: call :meth:`exchange` once a frame, after the
    solver's step. An inflow whose port is taken is a warning and left out: the water runs on."""

    def __init__(self, scene, record_ids: bool = False):
        self.context = zmq.Context.instance()
        self.run_id = uuid.uuid4().hex  # this run: the sender's name, and the inflows' epoch
        self.outgoing = [Outgoing(self.context, p, self.run_id) for p in scene.portals if p.direction == "out"]
        self.inflows = []
        for p in scene.portals:
            if p.direction != "in":
                continue
            try:
                self.inflows.append(Inflow(self.context, p, self.run_id, scene.domain, scene.fluid.spacing,
                                           record_ids))
            except PortalError as err:
                log.warning("%s: this work takes no water through it", err)
        for o in self.outgoing:
            log.info("portal %s: water leaving here goes to %s's portal %s", o.name, o.peer, o.peer_portal)
        for i in self.inflows:
            log.info("inflow %s: listening on %s", i.name, i.endpoint)
        self._logged = time.monotonic()

    def exchange(self, solver, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        which, positions, velocities = solver.take_outflow()
        for k, out in enumerate(self.outgoing):
            mine = which == k
            if mine.any():
                out.hand_over(positions[mine], velocities[mine])
            out.pump(now)
        for inflow in self.inflows:
            inflow.pump(solver)
        if now - self._logged >= LOG_EVERY_S:
            self._logged = now
            for line in self.describe():
                log.info("%s", line)

    def counters(self) -> list[dict]:
        return [o.counters() for o in self.outgoing] + [i.counters() for i in self.inflows]

    def describe(self) -> list[str]:
        """One line per portal, for the overlay and the log."""
        lines = []
        for o in self.outgoing:
            lines.append(f"portal {o.name} -> {o.peer}: sent {o.sent}, acknowledged {o.acknowledged}, drained "
                         f"{o.drained}, in flight {o.in_flight_particles}" + (f", bad {o.bad}" if o.bad else ""))
        for i in self.inflows:
            lines.append(f"inflow {i.name} {i.endpoint}: received {i.received}, refused {i.refused}"
                         + (f", repeats {i.duplicates}" if i.duplicates else "") + (f", bad {i.bad}" if i.bad else ""))
        return lines

    def close(self) -> None:
        for link in [*self.outgoing, *self.inflows]:
            link.close()
