"""Visitors' girth in the water's time.

The tracker fades a lost visitor out and back in by the wall clock (``weight``, over half a
second), a new visitor appears at full size, and the radius it estimates varies from frame to
frame. The water runs by its own clock, which on a machine that cannot keep up runs slower (the
frame loop drops the frames it cannot simulate); there, a visitor's surface sweeps out into the
water at metres a second of the water's time, handing it no velocity. Measured on 2 cores with
software rendering, the default scene with the synthetic visitors and the water well behind real
time: under WCSPH the radius in the water changed by 0.018 m in the median frame and by 0.11 m
in one frame in ten (0.003 m when the visitors are stepped in the water's time, as ``waterrock
render`` does); under DFSPH the water's top speed was over 8 m/s in 33 % of the frames with
visitors.

So a visitor's radius (radius x weight) changes by at most GROWTH metres per second of water,
from nothing when it first appears. DFSPH then had 8-9 % of its frames over 8 m/s. When the
water keeps up with the clock the bound is not reached by the fades, only by a visitor who steps
in at once, who grows in over a fifth of a second.

The visitors' places are left as the tracker has them: on a machine that cannot keep up they
sweep through the slower water, and WCSPH's stiff pressure sprays it (over 8 m/s in 56-68 % of
such frames with this bound, 64-67 % without, the water at 0.07 of real time). Bounding their
moves to their own speed in the water's time cut that to 16-18 % but left their shapes metres
behind them, where the water no longer answers them; with the lag bounded at 0.3 m it did not
help (measured). A machine that runs the water in real time has neither problem.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from waterrock.snapshots import ObstacleSnapshot

GROWTH = 1.0  # m/s of water: how fast a visitor's radius may change (0.2 m in 0.2 s)


class GirthInWaterTime:
    """Turns each obstacle snapshot into the one the water should see, visitor by visitor (id)."""

    def __init__(self, growth: float = GROWTH):
        self.growth = float(growth)
        self._ids = np.zeros(0, np.int64)
        self._girth = np.zeros(0, np.float32)  # radius x weight in the water, by id

    def __call__(self, snap: ObstacleSnapshot, water_dt: float) -> ObstacleSnapshot:
        """The snapshot for the next ``water_dt`` seconds of water."""
        girth = np.zeros(len(snap), np.float32)  # a visitor seen for the first time grows from nothing
        if len(snap) and len(self._ids):
            order = np.argsort(self._ids)
            k = np.searchsorted(self._ids[order], snap.ids).clip(0, len(order) - 1)
            prev = order[k]
            girth = np.where(self._ids[prev] == snap.ids, self._girth[prev], 0.0).astype(np.float32)
        want = snap.radius * snap.weight
        change = np.float32(self.growth * water_dt)
        # a bad value (NaN) goes on as it is, for the solver to reject and name; it is not kept
        girth = np.where(np.isfinite(want), np.clip(want, girth - change, girth + change), want)
        self._ids, self._girth = snap.ids.copy(), np.where(np.isfinite(girth), girth, 0.0).astype(np.float32)
        if np.array_equal(girth, want, equal_nan=True):
            return snap
        # as radius x weight with the weight in [0, 1]: where the tracker's radius estimate shrank
        # faster than the girth may, the radius is the girth's
        radius = np.where(girth > snap.radius, girth, snap.radius).astype(np.float32)
        weight = np.where(radius > 0, girth / np.maximum(radius, 1e-12), snap.weight).astype(np.float32)
        return dataclasses.replace(snap, radius=radius, weight=weight)
