"""The messages between works: a JSON header frame, then raw little-endian arrays.

Every message starts with a header naming the protocol (``MAGIC``) and its version, its kind
and its fields; the arrays follow as frames of exactly the size the header's count implies.
Anything else (another program's packet, a truncated frame, a count that does not match, a
position that is not finite) is a :class:`BadMessage` whose text says what was wrong: the
receiver counts it and drops it, and never lets it reach the loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

MAGIC = "waterrock"
VERSION = 1
MAX_BATCH = 1 << 20  # particles one hand-over may carry
MAX_HEADER = 4096  # bytes


class BadMessage(ValueError):
    """A message that is not ours or not whole; the text says which."""


def _opened(frames: list[bytes], kind: str, what: str, count: int) -> dict:
    """The header of a message that must be ``what`` (a ``kind`` of ``count`` frames)."""
    if len(frames) != count:
        raise BadMessage(f"{what} has {count} frame{'s' if count > 1 else ''}, this message {len(frames)}")
    h = _header(frames[0])
    if h.get("kind") != kind:
        raise BadMessage(f"kind {h.get('kind')!r} where {what} was expected")
    return h


def _header(frame: bytes) -> dict:
    if len(frame) > MAX_HEADER:
        raise BadMessage(f"header of {len(frame)} bytes (at most {MAX_HEADER})")
    try:
        h = json.loads(frame.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadMessage(f"header is not JSON: {err}") from None
    if not isinstance(h, dict) or h.get("magic") != MAGIC:
        raise BadMessage("not a waterrock message (no magic)")
    if h.get("v") != VERSION:
        raise BadMessage(f"protocol version {h.get('v')!r}, this work speaks {VERSION}")
    return h


def _field(h: dict, key: str, kind, lo=None, hi=None):
    value = h.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise BadMessage(f"{key} is {value!r}, not a {kind.__name__}")
    if lo is not None and not lo <= value <= hi:
        raise BadMessage(f"{key} = {value} outside {lo}..{hi}")
    return value


def _encode(header: dict) -> bytes:
    return json.dumps({"magic": MAGIC, "v": VERSION, **header}, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Batch:
    """Particles handed over through a portal: ``sender`` (a work's run, random), the peer's
    portal, a sequence number, and each particle's hand-over id, position and velocity (already
    in the peer's frame)."""

    sender: str
    portal: str
    seq: int
    ids: np.ndarray  # (n,) uint64: the sender portal's crossing count, unique per sender
    positions: np.ndarray  # (n, 3) float32
    velocities: np.ndarray  # (n, 3) float32

    def frames(self) -> list[bytes]:
        header = _encode({"kind": "batch", "sender": self.sender, "portal": self.portal, "seq": self.seq,
                          "n": len(self.ids)})
        return [header, np.ascontiguousarray(self.ids, "<u8").tobytes(),
                np.ascontiguousarray(self.positions, "<f4").tobytes(),
                np.ascontiguousarray(self.velocities, "<f4").tobytes()]

    @classmethod
    def parse(cls, frames: list[bytes]) -> Batch:
        h = _opened(frames, "batch", "a batch", 4)
        sender = _field(h, "sender", str)
        portal = _field(h, "portal", str)
        seq = _field(h, "seq", int, 0, 2**62)
        n = _field(h, "n", int, 0, MAX_BATCH)
        sizes = (8 * n, 12 * n, 12 * n)
        if tuple(len(f) for f in frames[1:]) != sizes:
            raise BadMessage(f"n = {n} needs arrays of {sizes} bytes, got {tuple(len(f) for f in frames[1:])}")
        ids = np.frombuffer(frames[1], "<u8")
        pos = np.frombuffer(frames[2], "<f4").reshape(n, 3)
        vel = np.frombuffer(frames[3], "<f4").reshape(n, 3)
        if not (np.isfinite(pos).all() and np.isfinite(vel).all()):
            raise BadMessage("a position or velocity is not finite")
        return cls(sender, portal, seq, ids, pos, vel)


@dataclass(frozen=True)
class Ack:
    """The receiver's answer to a batch: how many of its particles it took (the rest it had no
    room for), and the receiver's run (``epoch``), so a sender can tell a restarted peer from
    the one before."""

    portal: str
    seq: int
    accepted: int
    epoch: str

    def frames(self) -> list[bytes]:
        return [_encode({"kind": "ack", "portal": self.portal, "seq": self.seq, "accepted": self.accepted,
                         "epoch": self.epoch})]

    @classmethod
    def parse(cls, frames: list[bytes]) -> Ack:
        h = _opened(frames, "ack", "an ack", 1)
        return cls(_field(h, "portal", str), _field(h, "seq", int, 0, 2**62),
                   _field(h, "accepted", int, 0, MAX_BATCH), _field(h, "epoch", str))
