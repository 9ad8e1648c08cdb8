"""Visitors in the water's time.

Visitors move by the wall clock; the water moves by its own clock, which on a machine that
cannot keep up runs slower (the frame loop drops the frames it cannot simulate). Handed to the
solver as they are, the visitors then cover in one frame of water the ground they covered in
several frames of the wall clock: they sweep through the water faster than their velocity says,
and the water they push takes the difference. Measured on 2 cores with software rendering, the
default scene under WCSPH (the water at 0.07 of real time) with the synthetic visitors: the
water's top speed was over 8 m/s in 64-67 % of the frames with visitors (10 m/s in the median
one, the 20 m/s cap in a tenth), against none over 4.8 m/s when the same visitors are stepped in
the water's time (``waterrock render``); under DFSPH, over 8 m/s in 33 %.

The same holds for a visitor's girth: the tracker fades a lost visitor out and in again by the
wall clock (``weight``), and its radius estimate varies from frame to frame. In that run the
radius in the water changed by 0.018 m in the median frame and by 0.11 m in one frame in ten
(0.003 m when stepped): a surface sweeping out into the water at several metres a second that
hands the water no velocity.

So each visitor moves through the water at most at its own speed (and MARGIN) per second of
water: the speed its track reports or, for an obstacle that reports none (an OSC sphere need
not), the speed its last move by the wall clock took it at, timed over the time since the move
before, up to STALE (a starved tracker moves its visitors a few times a second, and the loop may
step twice between its frames); never less than PACE, so that a shape left behind catches up. It
grows or shrinks by at most GROWTH metres of radius per second of water, from nothing when it
first appears. When the water keeps up with the clock neither bound is reached (the tracker's
fade takes half a second); when it falls behind, the visitor's shape in the water lags the
visitor, and the water it pushes moves as fast as the velocity it is handed. A shape allowed to
catch up at 1.5 times the visitor's speed, or handed its own catching-up velocity, squirted more
(measured). With these bounds, in the same runs: WCSPH over 8 m/s in 16-18 % of the frames (4.2
m/s in the median one), DFSPH in none (5.4 m/s at most); PBF, capped at 4.3 m/s, unchanged.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from waterrock.snapshots import ObstacleSnapshot

MARGIN = 1.1  # a track's speed and the moves of its position disagree by some per cent
GROWTH = 1.0  # m/s: how fast a visitor's radius may grow in the water (0.2 m in 0.2 s)
PACE = 1.0  # m/s: the least speed a visitor is granted, so that one standing still is caught up
STALE = 0.25  # s: a move is timed over the time since the last one, up to this (a 4 Hz tracker)


class WaterTimeFollower:
    """Turns each obstacle snapshot of the wall clock into the one the water should see."""

    def __init__(self, growth: float = GROWTH):
        self.growth = float(growth)
        self._ids = np.zeros(0, np.int64)
        self._target = np.zeros((0, 3), np.float32)  # the visitors' centres by the wall clock
        self._moved_at = np.zeros(0, np.float64)  # the wall time each centre last changed
        self._pace = np.zeros(0, np.float64)  # the speed of that change, m/s by the wall clock
        self._water = np.zeros((0, 3), np.float32)  # where they are in the water
        self._girth = np.zeros(0, np.float32)  # their radius in the water (radius x weight)
        self.lag = 0.0  # the largest distance, m, between a visitor and its shape in the water now

    def __call__(self, snap: ObstacleSnapshot, water_dt: float, wall_time: float) -> ObstacleSnapshot:
        """The snapshot for the next ``water_dt`` seconds of water, taken at ``wall_time``."""
        target = 0.5 * (snap.a + snap.b)
        water = target.copy()
        girth = np.zeros(len(snap), np.float32)  # a visitor seen for the first time grows from nothing
        moved_at = np.full(len(snap), wall_time)
        pace = np.zeros(len(snap))
        if len(snap) and len(self._ids):
            order = np.argsort(self._ids)
            k = np.searchsorted(self._ids[order], snap.ids).clip(0, len(order) - 1)
            prev = order[k]
            seen = self._ids[prev] == snap.ids
            moved = np.linalg.norm(target - self._target[prev], axis=1)
            still = seen & (moved == 0.0)
            moved_at = np.where(still, self._moved_at[prev], wall_time)
            took = np.clip(wall_time - self._moved_at[prev], water_dt, STALE)
            pace = np.where(still, self._pace[prev], np.where(seen, moved / took, 0.0))
            reported = np.linalg.norm(snap.velocity, axis=1)
            speed = np.maximum(np.where(reported > 0.0, reported, pace), PACE)
            step = target - self._water[prev]
            length = np.linalg.norm(step, axis=1)
            reach = MARGIN * speed * water_dt
            short = seen & (length > reach)
            scale = np.where(short, reach / np.maximum(length, 1e-12), 1.0)
            water = np.where(short[:, None], self._water[prev] + scale[:, None] * step, target).astype(np.float32)
            girth = np.where(seen, self._girth[prev], 0.0).astype(np.float32)
        want = snap.radius * snap.weight
        change = np.float32(self.growth * water_dt)
        girth = np.clip(want, girth - change, girth + change)
        self._ids, self._target, self._water = snap.ids.copy(), target, water
        self._moved_at, self._pace, self._girth = moved_at, pace, girth
        shift = water - target
        self.lag = float(np.linalg.norm(shift, axis=1).max()) if len(snap) else 0.0
        if not shift.any() and np.array_equal(girth, want):
            return snap
        weight = np.where(snap.radius > 0, girth / np.maximum(snap.radius, 1e-12), snap.weight).astype(np.float32)
        return dataclasses.replace(snap, a=snap.a + shift, b=snap.b + shift, weight=weight)
