"""Tracks: stable ids across frames, and velocities that answer within a frame.

Each frame's detections (scene points) are matched to the tracks' predicted positions by the
Hungarian method (scipy's linear_sum_assignment) inside a gate that widens while a track
coasts unseen, so a person briefly hidden (by another, by a dropout) keeps their id. The state
is an alpha-beta filter (Kalata 1984): a constant-velocity model whose gains are fixed, so
the position follows a measurement at once (alpha near 1) and the velocity needs no long
average. A track is published after ``confirm_frames`` hits in a row and dropped after
``drop_frames`` misses: hysteresis both ways, so noise neither flickers in nor out.

Velocities are what a body can do: the filtered velocity (and the two-point one of a second
sighting) is clamped to ``max_speed``, so one bad match (two people swapped, a blob split) cannot
publish 20 m/s and throw the water across the room. A track that is not seen coasts, but it does
not fly on: its velocity decays as exp(-dt / coast_time) (the expected velocity of an
Ornstein-Uhlenbeck motion model, Uhlenbeck & Ornstein 1930: with nothing seen, the best guess is
that a walker slows down, not that they keep walking through walls), its position integrates that
decaying velocity (so it moves at most v0 * coast_time however long it is lost), and its
``weight`` falls from 1 to 0 over the misses, reaching 0 as it is dropped: the solver scales the
obstacle's radius by it, so the visitor shrinks away instead of vanishing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

_FAR = 1.0e6


@dataclass
class Track:
    id: int
    position: np.ndarray  # (3,) scene metres
    velocity: np.ndarray  # (3,) m/s
    last_seen: float  # timestamp of the last detection
    time: float  # timestamp the state is for
    hits: int = 1  # detections in a row while tentative, then all of them
    misses: int = 0  # frames in a row without a detection
    confirmed: bool = False
    attrs: dict = field(default_factory=dict)  # what the detection carried: radius, height, ...
    weight: float = 1.0  # 1 while seen, falling to 0 over the misses before the track is dropped


class Tracker:
    def __init__(
        self,
        gate: float = 0.6,
        gate_growth: float = 1.5,
        confirm_frames: int = 3,
        drop_frames: int = 10,
        alpha: float = 0.85,
        beta: float = 0.25,
        ids: Iterator[int] | None = None,
        max_speed: float = float("inf"),
        coast_time: float = 0.3,
    ) -> None:
        self.gate, self.gate_growth = gate, gate_growth
        self.confirm_frames, self.drop_frames = confirm_frames, drop_frames
        self.alpha, self.beta = alpha, beta
        self.max_speed = max_speed  # m/s: no velocity, measured or filtered, is faster
        self.coast_time = coast_time  # s: time constant of the velocity's decay while unseen
        self.tracks: list[Track] = []
        self._ids = ids if ids is not None else itertools.count(1)

    def _predict(self, t: float) -> np.ndarray:
        if not self.tracks:
            return np.zeros((0, 3))
        return np.array([tr.position + tr.velocity * (t - tr.time) for tr in self.tracks])

    def update(self, t: float, points: np.ndarray, attrs: list[dict] | None = None) -> list[Track]:
        """Fold in one frame's detections (N, 3) at time t; returns the confirmed tracks."""
        points = np.asarray(points, np.float64).reshape(-1, 3)
        attrs = attrs if attrs is not None else [{} for _ in range(len(points))]
        predicted = self._predict(t)
        matched_tracks, matched_dets = np.zeros(0, int), np.zeros(0, int)
        if len(self.tracks) and len(points):
            cost = np.linalg.norm(predicted[:, None, :] - points[None, :, :], axis=-1)
            gates = np.array([self.gate + self.gate_growth * (t - tr.last_seen) for tr in self.tracks])
            cost_gated = np.where(cost <= gates[:, None], cost, _FAR)
            rows, cols = linear_sum_assignment(cost_gated)
            ok = cost_gated[rows, cols] < _FAR
            matched_tracks, matched_dets = rows[ok], cols[ok]

        for ti, di in zip(matched_tracks, matched_dets, strict=True):
            self._correct(self.tracks[ti], predicted[ti], t, points[di], attrs[di])
        seen = set(matched_tracks.tolist())
        survivors = []
        for ti, tr in enumerate(self.tracks):
            if ti not in seen:
                tr.misses += 1
                self._coast(tr, t)
                if not tr.confirmed:
                    tr.hits = 0
                if (tr.confirmed and tr.misses > self.drop_frames) or (not tr.confirmed and tr.misses > 1):
                    continue
            survivors.append(tr)
        self.tracks = survivors
        used = set(matched_dets.tolist())
        for di in range(len(points)):
            if di not in used:
                self.tracks.append(
                    Track(
                        next(self._ids),
                        points[di].copy(),
                        np.zeros(3),
                        t,
                        t,
                        confirmed=self.confirm_frames <= 1,
                        attrs=dict(attrs[di]),
                    )
                )
        return self.confirmed()

    def _correct(self, tr: Track, predicted: np.ndarray, t: float, z: np.ndarray, attrs: dict) -> None:
        dt = t - tr.time
        if tr.hits == 1 and tr.misses == 0 and dt > 0:
            # second sighting: the two-point velocity, no filter history to trust yet
            tr.velocity = self._clamp((z - tr.position) / dt)
            tr.position = z.copy()
        else:
            residual = z - predicted
            tr.position = predicted + self.alpha * residual
            if dt > 0:
                tr.velocity = self._clamp(tr.velocity + (self.beta / dt) * residual)
        tr.time = tr.last_seen = t
        tr.hits += 1
        tr.misses = 0
        tr.weight = 1.0
        tr.attrs.update(attrs)
        if tr.hits >= self.confirm_frames:
            tr.confirmed = True

    def _clamp(self, v: np.ndarray) -> np.ndarray:
        """``v`` scaled down to ``max_speed`` if faster: the direction is kept, the speed is bounded."""
        speed = float(np.linalg.norm(v))
        return v * (self.max_speed / speed) if speed > self.max_speed else v

    def _coast(self, tr: Track, t: float) -> None:
        """Advance an unseen track to ``t``: v(s) = v0 exp(-s / tau), and the position moves by its
        integral v0 tau (1 - exp(-dt / tau)), which stays below v0 tau however long it coasts."""
        dt = t - tr.time
        if dt > 0:
            tau = self.coast_time
            decay = float(np.exp(-dt / tau)) if tau > 0 else 0.0
            tr.position = tr.position + tr.velocity * (tau * (1.0 - decay))
            tr.velocity = tr.velocity * decay
            tr.time = t
        # linear in the misses: 0 at the last frame it is kept, so it has shrunk away when it is dropped
        tr.weight = max(0.0, 1.0 - tr.misses / self.drop_frames) if self.drop_frames > 0 else 0.0

    def confirmed(self) -> list[Track]:
        return [tr for tr in self.tracks if tr.confirmed]
