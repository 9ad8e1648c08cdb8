"""The small typed snapshots that cross package boundaries (see DESIGN.md).

The tracker publishes an :class:`ObstacleSnapshot`, the solver takes it with
``Solver.set_obstacles`` and publishes a :class:`ParticleSnapshot` with ``Solver.snapshot``,
which the renderer draws. Both are plain numpy arrays with fixed dtypes, so they are cheap to
copy between threads and easy to serialise (``to_dict`` / ``from_dict``) for a future network
hop between a simulation node and render nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Obstacles larger or faster than this are not people: the snapshot is rejected as absurd.
MAX_OBSTACLE_RADIUS = 5.0  # m
MAX_OBSTACLE_SPEED = 50.0  # m/s
MAX_OBSTACLE_COORD = 1.0e3  # m


def _f32(a, shape_tail: tuple[int, ...]) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    if arr.size == 0:
        arr = arr.reshape((0, *shape_tail))
    return arr


@dataclass(frozen=True)
class ObstacleSnapshot:
    """Kinematic obstacles at one instant: every obstacle is a capsule, a sphere has ``a == b``.

    Arrays, M obstacles:
      a, b      (M, 3) float32  end points of the capsule's axis, metres, scene frame (y up)
      radius    (M,)   float32  metres
      velocity  (M, 3) float32  m/s, the velocity the obstacle gives the water it pushes
      ids       (M,)   int64    stable track ids
      weight    (M,)   float32  0..1, fade factor: the solver scales the radius by it, so an
                                obstacle whose track was lost shrinks away instead of vanishing
    """

    timestamp: float = 0.0
    a: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    b: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    radius: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    weight: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))

    def __post_init__(self) -> None:
        object.__setattr__(self, "a", _f32(self.a, (3,)).reshape(-1, 3))
        object.__setattr__(self, "b", _f32(self.b, (3,)).reshape(-1, 3))
        object.__setattr__(self, "radius", _f32(self.radius, ()).reshape(-1))
        object.__setattr__(self, "velocity", _f32(self.velocity, (3,)).reshape(-1, 3))
        object.__setattr__(self, "ids", np.asarray(self.ids, dtype=np.int64).reshape(-1))
        w = self.weight
        if np.asarray(w).size == 0 and self.a.shape[0] > 0:
            w = np.ones(self.a.shape[0], np.float32)
        object.__setattr__(self, "weight", _f32(w, ()).reshape(-1))
        m = self.a.shape[0]
        for name in ("b", "radius", "velocity", "ids", "weight"):
            if getattr(self, name).shape[0] != m:
                raise ValueError(
                    f"ObstacleSnapshot: '{name}' has {getattr(self, name).shape[0]} rows, 'a' has {m}"
                )

    def __len__(self) -> int:
        return int(self.a.shape[0])

    @classmethod
    def empty(cls, timestamp: float = 0.0) -> ObstacleSnapshot:
        return cls(timestamp=timestamp)

    @classmethod
    def spheres(cls, centers, radii, velocities=None, ids=None, timestamp: float = 0.0, weight=None):
        c = _f32(centers, (3,)).reshape(-1, 3)
        m = c.shape[0]
        return cls(
            timestamp=timestamp,
            a=c,
            b=c.copy(),
            radius=np.broadcast_to(np.asarray(radii, np.float32), (m,)).copy(),
            velocity=np.zeros((m, 3), np.float32) if velocities is None else velocities,
            ids=np.arange(m) if ids is None else ids,
            weight=np.ones(m, np.float32) if weight is None else weight,
        )

    @classmethod
    def capsules(cls, a, b, radii, velocities=None, ids=None, timestamp: float = 0.0, weight=None):
        a = _f32(a, (3,)).reshape(-1, 3)
        m = a.shape[0]
        return cls(
            timestamp=timestamp,
            a=a,
            b=b,
            radius=np.broadcast_to(np.asarray(radii, np.float32), (m,)).copy(),
            velocity=np.zeros((m, 3), np.float32) if velocities is None else velocities,
            ids=np.arange(m) if ids is None else ids,
            weight=np.ones(m, np.float32) if weight is None else weight,
        )

    @staticmethod
    def concat(parts: list[ObstacleSnapshot], timestamp: float | None = None) -> ObstacleSnapshot:
        parts = [p for p in parts if len(p)]
        if not parts:
            return ObstacleSnapshot.empty(timestamp or 0.0)
        return ObstacleSnapshot(
            timestamp=max(p.timestamp for p in parts) if timestamp is None else timestamp,
            a=np.concatenate([p.a for p in parts]),
            b=np.concatenate([p.b for p in parts]),
            radius=np.concatenate([p.radius for p in parts]),
            velocity=np.concatenate([p.velocity for p in parts]),
            ids=np.concatenate([p.ids for p in parts]),
            weight=np.concatenate([p.weight for p in parts]),
        )

    def _problems_of(self, i: int) -> list[str]:
        """What is wrong with obstacle i: not finite, or not physically plausible."""
        out = []
        tag = f"obstacle {i} (id {self.ids[i]})"
        vals = {
            "a": self.a[i], "b": self.b[i], "radius": self.radius[i],
            "velocity": self.velocity[i], "weight": self.weight[i],
        }
        for name, v in vals.items():
            if not np.all(np.isfinite(v)):
                out.append(f"{tag}: '{name}' is not finite: {v}")
        if not (0.0 < self.radius[i] <= MAX_OBSTACLE_RADIUS):
            out.append(f"{tag}: radius {self.radius[i]} m outside (0, {MAX_OBSTACLE_RADIUS}]")
        speed = float(np.linalg.norm(self.velocity[i]))
        if speed > MAX_OBSTACLE_SPEED:
            out.append(f"{tag}: speed {speed:.1f} m/s above {MAX_OBSTACLE_SPEED} m/s")
        if np.any(np.abs(self.a[i]) > MAX_OBSTACLE_COORD) or np.any(np.abs(self.b[i]) > MAX_OBSTACLE_COORD):
            out.append(f"{tag}: position beyond {MAX_OBSTACLE_COORD} m")
        if not (0.0 <= self.weight[i] <= 1.0):
            out.append(f"{tag}: weight {self.weight[i]} outside [0, 1]")
        return out

    def valid_mask(self) -> np.ndarray:
        """Which obstacles are finite and plausible (the tests of _problems_of), for all at once:
        a tracker gone wrong may send thousands, and a Python loop over them took 172 ms a frame
        for 10,000."""
        with np.errstate(invalid="ignore", over="ignore"):
            rows = np.concatenate([self.a, self.b, self.radius[:, None], self.velocity, self.weight[:, None]], axis=1)
            ok = np.isfinite(rows).all(axis=1)
            ok &= (self.radius > 0.0) & (self.radius <= MAX_OBSTACLE_RADIUS)
            ok &= np.linalg.norm(self.velocity, axis=1) <= MAX_OBSTACLE_SPEED
            ok &= (np.abs(np.concatenate([self.a, self.b], axis=1)) <= MAX_OBSTACLE_COORD).all(axis=1)
            ok &= (self.weight >= 0.0) & (self.weight <= 1.0)
        return ok

    def problems(self, limit: int | None = None) -> list[str]:
        """One message per problem of any obstacle; with ``limit``, of the first ``limit``
        obstacles that have problems, and one line that counts the others."""
        return self._messages(np.flatnonzero(~self.valid_mask()), limit)

    def valid_only(self, limit: int | None = None) -> tuple[ObstacleSnapshot, list[str]]:
        """This snapshot without the obstacles that have problems, and the problems (see problems
        for ``limit``)."""
        ok = self.valid_mask()
        if ok.all():
            return self, []
        return self.select(ok), self._messages(np.flatnonzero(~ok), limit)

    def _messages(self, bad: np.ndarray, limit: int | None) -> list[str]:
        msgs = [msg for i in bad[:limit] for msg in self._problems_of(int(i))]
        if limit is not None and len(bad) > limit:
            msgs.append(f"and {len(bad) - limit:,} more obstacles with problems")
        return msgs

    def select(self, mask: np.ndarray) -> ObstacleSnapshot:
        return ObstacleSnapshot(
            timestamp=self.timestamp, a=self.a[mask], b=self.b[mask], radius=self.radius[mask],
            velocity=self.velocity[mask], ids=self.ids[mask], weight=self.weight[mask],
        )

    def to_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict) -> ObstacleSnapshot:
        return cls(**d)


@dataclass(frozen=True)
class ParticleSnapshot:
    """The active particles after a frame.

    Arrays, N active particles (inactive, retired particles are left out):
      positions   (N, 3) float32  metres, scene frame (y up)
      velocities  (N, 3) float32  m/s
      ids         (N,)   int32    stable particle ids: they survive the solver's reordering
      recycled    (N,)   bool     the particle was (re-)emitted since the previous snapshot:
                                  its trail must start afresh, never joined to its old position
      packing     (N,)   float32  optional: how packed the water is round the particle, its
                                  density over the rest density (rho/rho0, the solids' share
                                  included): about 1 in a sheet or a pool, about 0.3 for a lone
                                  drop. None (recorded data, other sources): taken as 1, packed
    """

    frame: int
    time: float
    positions: np.ndarray
    velocities: np.ndarray
    ids: np.ndarray
    recycled: np.ndarray
    packing: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.positions.shape[0]
        for name in ("velocities", "ids", "recycled", *(("packing",) if self.packing is not None else ())):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"ParticleSnapshot: '{name}' has {getattr(self, name).shape[0]} rows, positions {n}")

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    def to_dict(self) -> dict:
        """Plain lists; ``packing`` only where the snapshot has it."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()
                if not (k == "packing" and v is None)}

    @classmethod
    def from_dict(cls, d: dict) -> ParticleSnapshot:
        packing = d.get("packing")
        return cls(
            frame=int(d["frame"]), time=float(d["time"]),
            positions=np.asarray(d["positions"], np.float32).reshape(-1, 3),
            velocities=np.asarray(d["velocities"], np.float32).reshape(-1, 3),
            ids=np.asarray(d["ids"], np.int32), recycled=np.asarray(d["recycled"], bool),
            packing=None if packing is None else np.asarray(packing, np.float32).reshape(-1),
        )
