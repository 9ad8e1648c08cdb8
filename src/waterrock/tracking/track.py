"""Tracks: stable ids across frames, and velocities that answer within a frame.

Each frame's detections (scene points) are matched to the tracks' predicted positions by the
Hungarian method (scipy's linear_sum_assignment) inside a gate that widens while a track
coasts unseen, so a person briefly hidden (by another, by a dropout) keeps their id. The state
is an alpha-beta filter (Kalata 1984): a constant-velocity model whose gains are fixed, so
the position follows a measurement at once (alpha near 1) and the velocity needs no long
average. A track is published after ``confirm_frames`` hits in a row and dropped after
``drop_frames`` misses: hysteresis both ways, so noise neither flickers in nor out.
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
    ) -> None:
        self.gate, self.gate_growth = gate, gate_growth
        self.confirm_frames, self.drop_frames = confirm_frames, drop_frames
        self.alpha, self.beta = alpha, beta
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
                tr.position, tr.time = predicted[ti], t  # coast on the constant-velocity model
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
            tr.velocity = (z - tr.position) / dt
            tr.position = z.copy()
        else:
            residual = z - predicted
            tr.position = predicted + self.alpha * residual
            if dt > 0:
                tr.velocity = tr.velocity + (self.beta / dt) * residual
        tr.time = tr.last_seen = t
        tr.hits += 1
        tr.misses = 0
        tr.attrs.update(attrs)
        if tr.hits >= self.confirm_frames:
            tr.confirmed = True

    def confirmed(self) -> list[Track]:
        return [tr for tr in self.tracks if tr.confirmed]
