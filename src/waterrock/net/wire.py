"""The messages between works (a portal's batches and their acknowledgements) and from a
simulation node to its render nodes (frames): a JSON header frame, then raw little-endian arrays.

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


def _opened(frames: list[bytes], kind: str, what: str, count: int | tuple[int, ...]) -> dict:
    """The header of a message that must be ``what`` (a ``kind`` of ``count`` frames, or of one
    of the counts given)."""
    counts = count if isinstance(count, tuple) else (count,)
    if len(frames) not in counts:
        many = " or ".join(str(c) for c in counts)
        raise BadMessage(f"{what} has {many} frame{'s' if counts[-1] > 1 else ''}, this message {len(frames)}")
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
        name = "number" if isinstance(kind, tuple) else kind.__name__
        raise BadMessage(f"{key} is {value!r}, not a {name}")
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


# --- a simulation node's frames, for its render nodes ------------------------------------------

ENCODINGS = ("f32", "f16", "q16")
MAX_FRAME = 1 << 24  # particles one frame may carry
_POSITION_BYTES = {"f32": 12, "f16": 6, "q16": 6}
_VELOCITY_BYTES = {"f32": 12, "f16": 6, "q16": 6}
RECYCLED = 1  # flags bit: the particle was (re-)emitted since the previous frame


@dataclass(frozen=True)
class Frame:
    """One simulation frame's particles for render nodes: the simulation node's ``run`` (random
    per process) and ``generation`` (its water's resets), the frame's number and time, the
    trails' ``share`` the particles were chosen by (1: all of them), when it was published, and
    each particle's position, velocity, id and flags; and, where the snapshot has it, how packed
    the water is round each (``ParticleSnapshot.packing``) in a sixth frame that the header's
    ``"packing": true`` announces (a frame of five, as version 1 first sent, has none).

    Encodings (bytes a particle): ``f32`` exact (29, 33 with packing); ``f16`` half floats (17,
    19); ``q16`` positions as 16-bit steps of the frame's bounding box, velocities and packing as
    half floats (17, 19). Half floats are within 1/2048 of the value (0.5 mm at 1 m); 16-bit
    steps within 1/131070 of the box (0.06 mm over 8 m)."""

    run: str
    generation: int
    frame: int
    time: float
    share: float
    sent: float  # time.time() at publishing
    positions: np.ndarray  # (n, 3) float32
    velocities: np.ndarray  # (n, 3) float32
    ids: np.ndarray  # (n,) int32
    flags: np.ndarray  # (n,) uint8
    packing: np.ndarray | None = None  # (n,) float32, or none sent

    def frames(self, encoding: str = "f32") -> list:
        n = len(self.ids)
        header = {"kind": "frame", "run": self.run, "generation": self.generation, "frame": self.frame,
                  "time": self.time, "share": self.share, "sent": self.sent, "n": n, "enc": encoding}
        if encoding == "f32":
            pos = np.ascontiguousarray(self.positions, "<f4")
            vel = np.ascontiguousarray(self.velocities, "<f4")
        elif encoding in ("f16", "q16"):
            vel = self.velocities.astype("<f2")
            if encoding == "f16":
                pos = self.positions.astype("<f2")
            else:
                # column by column: numpy reduces an (n, 3) array along its first axis ten times slower
                cols = [self.positions[:, c] for c in range(3)]
                lo = np.array([c.min() for c in cols] if n else [0.0] * 3, np.float32)
                hi = np.array([c.max() for c in cols] if n else [0.0] * 3, np.float32)
                scale = (65535.0 / np.maximum(hi - lo, 1e-9)).astype(np.float32)
                q = self.positions - lo
                q *= scale
                q += 0.5  # rounded to the nearest step, in float32 (a float64 rint took twice as long)
                pos = q.astype("<u2")
                header["lo"], header["hi"] = lo.tolist(), hi.tolist()
        else:
            raise ValueError(f"unknown encoding {encoding!r}: one of {', '.join(ENCODINGS)}")
        parts = [pos, vel, np.ascontiguousarray(self.ids, "<i4"), np.ascontiguousarray(self.flags, "u1")]
        if self.packing is not None:
            header["packing"] = True
            parts.append(np.ascontiguousarray(self.packing, "<f4") if encoding == "f32" else self.packing.astype("<f2"))
        return [_encode(header), *parts]

    @classmethod
    def parse(cls, frames: list) -> Frame:
        frames = [bytes(frames[0]), *frames[1:]] if frames else frames  # arrays stay zero-copy zmq.Frames
        h = _opened(frames, "frame", "a frame", (5, 6))
        n = _field(h, "n", int, 0, MAX_FRAME)
        enc = _field(h, "enc", str)
        if enc not in ENCODINGS:
            raise BadMessage(f"encoding {enc!r}, not one of {', '.join(ENCODINGS)}")
        packed = _field(h, "packing", bool) if "packing" in h else False
        if len(frames) != (6 if packed else 5):
            raise BadMessage(f"a frame {'with' if packed else 'without'} packing has {6 if packed else 5} frames, "
                             f"this message {len(frames)}")
        sizes = (_POSITION_BYTES[enc] * n, _VELOCITY_BYTES[enc] * n, 4 * n, n)
        if packed:
            sizes += ((4 if enc == "f32" else 2) * n,)
        if tuple(len(f) for f in frames[1:]) != sizes:
            raise BadMessage(f"n = {n} ({enc}) needs arrays of {sizes} bytes, got {tuple(len(f) for f in frames[1:])}")
        if enc == "f32":
            pos = np.frombuffer(frames[1], "<f4").reshape(n, 3)
        elif enc == "f16":
            pos = np.frombuffer(frames[1], "<f2").reshape(n, 3).astype(np.float32)
        else:
            lo, hi = (np.asarray(_field(h, k, list), np.float64) for k in ("lo", "hi"))
            if lo.shape != (3,) or hi.shape != (3,) or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
                raise BadMessage(f"q16 bounds lo {h['lo']!r}, hi {h['hi']!r} are not two finite 3-vectors")
            step = (np.maximum(hi - lo, 1e-9) / 65535.0).astype(np.float32)
            pos = np.frombuffer(frames[1], "<u2").reshape(n, 3).astype(np.float32)
            pos *= step
            pos += lo.astype(np.float32)
        vel = np.frombuffer(frames[2], "<f4" if enc == "f32" else "<f2").reshape(n, 3).astype(np.float32, copy=False)
        if not (np.isfinite(pos).all() and np.isfinite(vel).all()):
            raise BadMessage("a position or velocity is not finite")
        packing = None
        if packed:
            packing = np.frombuffer(frames[5], "<f4" if enc == "f32" else "<f2").astype(np.float32, copy=False)
            if not np.isfinite(packing).all():
                raise BadMessage("a packing is not finite")
        number = (int, float)
        return cls(_field(h, "run", str), _field(h, "generation", int, 0, 2**62), _field(h, "frame", int, 0, 2**62),
                   float(_field(h, "time", number, 0, 1e12)), float(_field(h, "share", number, 0, 1)),
                   float(_field(h, "sent", number, 0, 1e12)), pos, vel, np.frombuffer(frames[3], "<i4"),
                   np.frombuffer(frames[4], "u1"), packing)
