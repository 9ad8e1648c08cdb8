"""Trails: the last K positions of a stable share of the particles, in a GPU ring buffer.

The particles that draw a trail are chosen by a hash of their id, so the choice never changes
while the solver reorders, retires and re-emits particles. Each tracked id owns one slot; the
id -> slot table is dense (ids lie in 0..max_particles-1) and built once, so a frame maps ids to
slots with one numpy gather. Slots go in order of the hash, so the first m slots are exactly the
ids a smaller share chooses: drawing a part of the trails (``set_drawn``) is drawing fewer slots.
Each frame uploads only the newest position of every slot, into the ring entry at the head;
older entries stay on the GPU until the head comes round again. Beside each position the ring
keeps how packed the water was there (``ParticleSnapshot.packing``, 1 where the snapshot has
none), in a texture of the same layout, for the lines' look.

Texture layout: the ``history`` texture is ``row_width`` wide and ``rows * K`` tall. Ring entry
``r`` occupies rows ``[r * rows, (r + 1) * rows)`` and slot ``s`` sits at texel
``(s % row_width, r * rows + s // row_width)``: one ``texture.write`` per frame fills it.
"""

from __future__ import annotations

import math

import moderngl
import numpy as np

from waterrock.render.settings import MAX_TRAIL_LENGTH
from waterrock.snapshots import ParticleSnapshot


def id_hash(ids: np.ndarray) -> np.ndarray:
    """lowbias32 (Chris Wellons' hash-prospector) of each id, a bijection on 32-bit integers, as uint64."""
    h = np.asarray(ids).astype(np.uint64) & 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x7FEB352D) & 0xFFFFFFFF
    h ^= h >> 15
    h = (h * 0x846CA68B) & 0xFFFFFFFF
    h ^= h >> 16
    return h


def hash_below(share: float) -> np.uint64:
    """The hashes that ``share`` of the ids lie below."""
    return np.uint64(min(share, 1.0) * 2.0**32)


def chosen(ids: np.ndarray, share: float) -> np.ndarray:
    """Whether each id draws a trail: a well-mixed 32-bit hash of the id below ``share``.

    A hash rather than ``id % n`` because emitters hand out ids in order, and a stride would
    pick particles from the same rows of the emitter: the lines would look combed.
    """
    return id_hash(ids) < hash_below(share)


class TrailBuffer:
    """Host-side id -> slot table and trail lengths; GPU-side ring of positions, speeds and packing."""

    def __init__(self, ctx: moderngl.Context, max_particles: int, share: float, length: int):
        if length < 2:
            raise ValueError(f"a trail needs at least 2 positions, got K={length}")
        if length > MAX_TRAIL_LENGTH:
            raise ValueError(f"a trail keeps at most {MAX_TRAIL_LENGTH} positions, got K={length}")
        self.ctx, self.max_particles, self.length = ctx, int(max_particles), int(length)
        self.share = float(share)
        h = id_hash(np.arange(self.max_particles))
        tracked = np.flatnonzero(h < hash_below(self.share))
        order = np.argsort(h[tracked], kind="stable")
        self.id_of_slot = tracked[order].astype(np.int32)  # in order of the hash: see set_drawn
        self._slot_hash = h[tracked][order]
        self.capacity = int(tracked.size)
        self.slot_of = np.full(self.max_particles, -1, np.int32)
        self.slot_of[self.id_of_slot] = np.arange(self.capacity, dtype=np.int32)

        max_size = int(ctx.info["GL_MAX_TEXTURE_SIZE"])
        self.row_width = max(1, min(max_size, self.capacity))
        self.rows = max(1, math.ceil(self.capacity / self.row_width))
        if self.rows * self.length > max_size:
            raise ValueError(
                f"{self.capacity} trails x K={self.length} exceed this GPU's {max_size}^2 texture; "
                "lower [render.trails] share or length"
            )
        texels = self.row_width * self.rows
        self.history = ctx.texture((self.row_width, self.rows * self.length), 4, dtype="f4")
        self.packing = ctx.texture((self.row_width, self.rows * self.length), 1, dtype="f4")
        self.lengths_texture = ctx.texture((self.row_width, self.rows), 1, dtype="i4")
        # the drawn slots that have a segment, in slot order: the instances are these trails' only
        # (a software renderer pays about a microsecond for an instance that draws nothing, and a
        # budget's slots outnumbered the live ones ten to one in the default scene)
        self.live_texture = ctx.texture((self.row_width, self.rows), 1, dtype="i4")
        for tex in (self.history, self.packing, self.lengths_texture, self.live_texture):
            tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self.head = 0
        self.lengths = np.zeros(texels, np.int32)  # valid positions per slot, 0: not drawn
        self._newest = np.zeros((texels, 4), np.float32)
        self._newest_packing = np.ones(texels, np.float32)
        # each ring entry's snapshot time (s), for the water's acceleration along the trails: the
        # shader is given the intervals, so a frame a render node missed is no sudden turn
        self._entry_time = np.zeros(self.length, np.float64)
        self._age_time = np.zeros(MAX_TRAIL_LENGTH, np.float32)
        self._live = np.zeros(texels, np.int32)
        self.live_count = 0
        self.lengths_texture.write(self.lengths)
        self.set_drawn()

    def set_drawn(self, length: int | None = None, share: float = 1.0) -> None:
        """Draw only the newest ``length`` positions (2..K; None: all K) of the trails of ``share``
        of the tracked particles (those ``chosen(ids, share * self.share)`` chooses): the first
        ``drawn_slots`` slots. The ring keeps every position of every slot, so drawing more again
        shows full trails at once."""
        length = self.length if length is None else int(length)
        if not 2 <= length <= self.length:
            raise ValueError(f"a drawn trail length lies in 2..K={self.length}, got {length}")
        if not 0.0 < share <= 1.0:
            raise ValueError(f"a drawn share of the trails lies in (0, 1], got {share}")
        self.drawn_length, self.drawn_share = length, float(share)
        # the hashes are sorted: the slots below the threshold are a prefix
        self.drawn_slots = int(np.searchsorted(self._slot_hash, hash_below(share * self.share), side="left"))
        self._find_live()

    def _find_live(self) -> None:
        live = np.flatnonzero(self.lengths[: self.drawn_slots] >= 2)
        self.live_count = int(live.size)
        self._live[: live.size] = live
        self.live_texture.write(self._live)

    @property
    def segments(self) -> int:
        """Instances the line program draws: L-1 per drawn trail of two positions or more."""
        return self.live_count * (self.drawn_length - 1)

    def update(self, snapshot: ParticleSnapshot) -> None:
        """Advance every trail by one position: the newest positions go in at the ring's head."""
        ids = np.asarray(snapshot.ids, dtype=np.int64)
        inside = (ids >= 0) & (ids < self.max_particles)
        slot = np.full(ids.shape, -1, np.int32)
        slot[inside] = self.slot_of[ids[inside]]
        drawn = slot >= 0
        slots = slot[drawn]

        present = np.zeros(self.lengths.shape, bool)
        present[slots] = True
        # A particle that left the snapshot stops drawing (length 0); one that came back or was
        # re-emitted starts afresh with a single position, so no segment joins it to where it was.
        self.lengths = np.where(present, np.minimum(self.lengths + 1, self.length), 0).astype(np.int32)
        self.lengths[slots[np.asarray(snapshot.recycled)[drawn]]] = 1

        self.head = (self.head + 1) % self.length
        self._newest[slots, :3] = snapshot.positions[drawn]
        self._newest[slots, 3] = np.linalg.norm(snapshot.velocities[drawn], axis=1)
        self._newest_packing[slots] = 1.0 if snapshot.packing is None else snapshot.packing[drawn]
        ring_entry = (0, self.head * self.rows, self.row_width, self.rows)
        self.history.write(self._newest, viewport=ring_entry)
        self.packing.write(self._newest_packing, viewport=ring_entry)
        self._entry_time[self.head] = snapshot.time
        self.lengths_texture.write(self.lengths)
        self._find_live()

    @property
    def upload_bytes(self) -> int:
        """Bytes sent to the GPU per frame."""
        return self._newest.nbytes + self._newest_packing.nbytes + self.lengths.nbytes + self._live.nbytes

    def read_segments(self, drawn: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Read back every stored segment from the GPU (for tests and debugging, not per frame),
        or with ``drawn`` only those ``set_drawn`` draws: end points ``a`` (nearer the head) and
        ``b`` as (S, 3) arrays, and each one's slot."""
        k, texels = self.length, self.row_width * self.rows
        ring = np.frombuffer(self.history.read(), np.float32).reshape(k, texels, 4)[:, : self.capacity]
        n = np.frombuffer(self.lengths_texture.read(), np.int32)[: self.capacity].copy()
        if drawn:
            n = np.minimum(n, self.drawn_length)
            n[self.drawn_slots:] = 0
        slot, seg = np.nonzero(np.arange(k - 1)[None, :] + 1 < n[:, None])
        a = ring[(self.head - seg) % k, slot, :3]
        b = ring[(self.head - seg - 1) % k, slot, :3]
        return a, b, slot

    def bind(self, program: moderngl.Program, history_unit: int = 0, lengths_unit: int = 1, live_unit: int = 4,
             packing_unit: int = 5) -> None:
        self.history.use(history_unit)
        self.lengths_texture.use(lengths_unit)
        self.live_texture.use(live_unit)
        self.packing.use(packing_unit)
        program["history"].value = history_unit
        program["lengths"].value = lengths_unit
        program["live"].value = live_unit
        program["packing"].value = packing_unit
        # s from the newest positions back to those of each age, in float64 until here: a run's
        # clock after days has no float32 digits left for a frame
        k = self.length
        self._age_time[:k] = self._entry_time[self.head] - self._entry_time[(self.head - np.arange(k)) % k]
        program["age_time"].write(self._age_time)
        program["trail_length"].value = self.length
        program["drawn_length"].value = self.drawn_length
        program["head"].value = self.head
        program["rows"].value = self.rows

    def release(self) -> None:
        self.history.release()
        self.packing.release()
        self.lengths_texture.release()
        self.live_texture.release()
