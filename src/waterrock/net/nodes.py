"""Simulation and render nodes: each simulation frame's particles, published to the render
nodes that draw them (DESIGN.md, "Many works, many machines").

A simulation node binds a ZeroMQ PUB socket (on 127.0.0.1 unless told another interface) and
publishes every simulation frame as a :class:`~waterrock.net.wire.Frame`: every frame, not
every displayed one, because the trails sample the water at the simulation's rate. A render node
connects a SUB socket to it, takes the frames in order and draws them on its own outputs.

Publish-subscribe, as the ZeroMQ guide's chapter 5 has it: the publisher never waits for a
subscriber; a render node that falls behind loses frames at its own queue's high-water mark
(counted as missed by the frame numbers), never slows the simulation or the other nodes; one
that joins late, or whose simulation node restarts, starts its trails afresh and matches frames
by (run, generation, frame).
"""

from __future__ import annotations

import collections
import logging
import re
import time
import uuid

import numpy as np
import zmq

from waterrock.net.wire import ENCODINGS, RECYCLED, BadMessage, Frame
from waterrock.rate_limit import RateLimitedLog
from waterrock.render.trails import chosen
from waterrock.snapshots import ParticleSnapshot

log = logging.getLogger(__name__)

HWM_FRAMES = 8  # frames queued for one render node before it loses the oldest it has not taken
_ENDPOINT = re.compile(r"^tcp://[^\s:/]+:[0-9]{1,5}$")


class NodeError(RuntimeError):
    """An endpoint that cannot be used (taken, malformed); the message says which and why."""


def endpoint(spec: str | int, interface: str = "127.0.0.1") -> str:
    """``tcp://host:port`` from a port (on ``interface``) or an endpoint given whole."""
    text = str(spec).strip()
    if text.isdigit():
        text = f"tcp://{interface}:{text}"
    if not _ENDPOINT.match(text) or not 1 <= int(text.rsplit(":", 1)[1]) <= 65535:
        raise NodeError(f"{spec!r} is not a port or an endpoint tcp://host:port")
    return text


def frame_of(snapshot: ParticleSnapshot, run: str, generation: int, share: float = 1.0,
             draws: np.ndarray | None = None) -> Frame:
    """A snapshot as a frame: with ``share`` < 1, only the particles that draw lines (the
    renderer's choice by id, ``render/trails.chosen``; ``draws``, that choice made once for every
    id the snapshot can hold, saves hashing every id again each frame)."""
    ids, pos, vel, recycled = snapshot.ids, snapshot.positions, snapshot.velocities, snapshot.recycled
    packing = snapshot.packing
    if share < 1.0:
        keep = np.flatnonzero(chosen(ids, share) if draws is None else draws[ids])
        ids, pos, vel, recycled = ids[keep], pos[keep], vel[keep], recycled[keep]
        packing = None if packing is None else packing[keep]
    return Frame(run, generation, int(snapshot.frame), float(snapshot.time), float(share), time.time(), pos, vel,
                 ids, np.where(recycled, RECYCLED, 0).astype(np.uint8), packing)


def snapshot_of(frame: Frame) -> ParticleSnapshot:
    return ParticleSnapshot(frame=frame.frame, time=frame.time, positions=frame.positions,
                            velocities=frame.velocities, ids=frame.ids, recycled=(frame.flags & RECYCLED) != 0,
                            packing=frame.packing)


class SnapshotPublisher:
    """The simulation node's end: ``publish(snapshot)`` once a simulation frame."""

    def __init__(self, spec: str, encoding: str = "f32", lines_share: float | None = None, context=None):
        if encoding not in ENCODINGS:
            raise NodeError(f"unknown encoding {encoding!r}: one of {', '.join(ENCODINGS)}")
        self.endpoint = endpoint(spec)
        self.encoding = encoding
        self.share = 1.0 if lines_share is None else float(lines_share)
        self.sock = (context or zmq.Context.instance()).socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, HWM_FRAMES * 5)  # five parts a frame
        try:
            self.sock.bind(self.endpoint)
        except zmq.ZMQError as err:
            self.sock.close(0)
            raise NodeError(f"cannot publish frames on {self.endpoint}: {err}") from None
        self.run = uuid.uuid4().hex
        self.generation = 0
        self._draws = np.zeros(0, bool)  # whether each id draws a line, for --lines-only
        self.published = 0
        self.bytes = 0  # of the last frame
        log.info("publishing each frame on %s (%s%s)", self.endpoint, encoding,
                 f", the {self.share:.1%} of particles that draw lines" if self.share < 1.0 else "")

    def reset(self) -> None:
        """The water starts again: render nodes start their trails afresh."""
        self.generation += 1

    def publish(self, snapshot: ParticleSnapshot) -> None:
        if self.share < 1.0 and len(snapshot) and (top := int(snapshot.ids.max()) + 1) > len(self._draws):
            self._draws = chosen(np.arange(max(top, 2 * len(self._draws))), self.share)  # ids are a budget's
        parts = frame_of(snapshot, self.run, self.generation, self.share, self._draws).frames(self.encoding)
        self.sock.send_multipart(parts, copy=False)  # a PUB socket drops, never blocks
        self.published += 1
        self.bytes = sum(len(p) if isinstance(p, bytes) else p.nbytes for p in parts)

    def describe(self) -> list[str]:
        return [f"publishing {self.endpoint}: {self.published} frames, {self.bytes / 1e6:.2f} MB a frame "
                f"({self.encoding})"]

    def close(self) -> None:
        self.sock.close(0)


class FrameReceiver:
    """The render node's end: ``take()`` the frames that arrived, in order, each with whether the
    trails must start afresh before it (a new run or generation of the simulation node, or a gap
    of more than ``max_gap`` frames)."""

    def __init__(self, spec: str, max_gap: int = 8, context=None):
        self.endpoint = endpoint(spec)
        self.max_gap = int(max_gap)
        self.sock = (context or zmq.Context.instance()).socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, HWM_FRAMES // 2 * 5)  # a node behind drops old frames, not shows them late
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        try:
            self.sock.connect(self.endpoint)
        except zmq.ZMQError as err:
            self.sock.close(0)
            raise NodeError(f"cannot take frames from {self.endpoint}: {err}") from None
        self.last: tuple[str, int, int] | None = None  # (run, generation, frame) of the last taken
        self.last_arrival: float | None = None  # time.monotonic()
        self.received = self.missed = self.stale = self.bad = self.restarts = 0
        self.latency_ms: collections.deque = collections.deque(maxlen=600)  # publish -> taken, same clock only
        self.share: float | None = None
        self.said = RateLimitedLog(log).say

    def wait(self, timeout_s: float) -> bool:
        """Whether something arrived within ``timeout_s``."""
        return bool(self.sock.poll(max(0, int(1e3 * timeout_s)), zmq.POLLIN))

    def take(self) -> list[tuple[Frame, bool]]:
        out = []
        while True:
            try:
                parts = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            try:
                frame = Frame.parse(parts)
            except BadMessage as err:
                self.bad += 1
                self.said(logging.WARNING, "bad", "frames from %s: dropped a message: %s", self.endpoint, err)
                continue
            fresh = self._fresh(frame)
            if fresh is None:
                continue
            out.append((frame, fresh))
        if out:
            now = time.time()
            self.last_arrival = time.monotonic()
            self.latency_ms.extend(1e3 * (now - f.sent) for f, _ in out)
        return out

    def _fresh(self, frame: Frame) -> bool | None:
        """None: a frame already drawn (stale); else whether the trails start afresh before it."""
        key = (frame.run, frame.generation)
        self.received += 1
        if self.share != frame.share:
            self.share = frame.share
            if frame.share < 1.0:
                log.info("frames from %s carry the %.1f%% of particles that draw lines", self.endpoint,
                         100 * frame.share)
        if self.last is not None and key == self.last[:2]:
            gap = frame.frame - self.last[2]
            if gap <= 0:
                self.stale += 1
                return None
            self.last = (*key, frame.frame)
            self.missed += gap - 1
            return gap > self.max_gap
        if self.last is not None:
            self.restarts += 1
            self.said(logging.WARNING, "restart", "frames from %s: the simulation node %s: trails start afresh",
                      self.endpoint, "restarted" if key[0] != self.last[0] else "reset its water")
        self.last = (*key, frame.frame)
        return True

    def since_last(self) -> float | None:
        """Seconds since a frame last arrived, None before the first."""
        return None if self.last_arrival is None else time.monotonic() - self.last_arrival

    def describe(self) -> list[str]:
        lat = np.percentile(self.latency_ms, [50, 99]) if self.latency_ms else (0.0, 0.0)
        return [f"frames from {self.endpoint}: {self.received} received, missed {self.missed}, stale {self.stale}, "
                f"restarts {self.restarts}" + (f", bad {self.bad}" if self.bad else ""),
                f"  latency p50 {lat[0]:.1f} ms, p99 {lat[1]:.1f} ms (publish to taken)"]

    def close(self) -> None:
        self.sock.close(0)
