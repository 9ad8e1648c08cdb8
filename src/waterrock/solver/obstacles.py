"""Kinematic obstacles: visitors as capsules and spheres that push the water.

An obstacle is a capsule (segment a-b, radius R; a sphere has a == b) moving with velocity u.
Between two snapshots an obstacle moves on with its velocity, so that a fast
visitor sweeps through the water substep by substep instead of jumping once a frame (the
extrapolation is capped at MAX_EXTRAPOLATION). A particle closer to its axis than R + r is
projected onto its surface, and its velocity
relative to the obstacle loses the part that points in, and a share of the sliding part: the
moving obstacle pushes the water and hands it its own velocity, as a moving rigid boundary does
(Ihmsen et al. 2010, "Boundary handling and adaptive time-stepping for PCISPH", sec. 3, with
the boundary's velocity in the no-penetration condition).
"""

import logging
from typing import NamedTuple

import numpy as np
import taichi as ti

from waterrock.rate_limit import RateLimitedLog
from waterrock.snapshots import ObstacleSnapshot
from waterrock.solver.types import capsule, nd_capsule, nd_f32_2d, vec3

log = logging.getLogger(__name__)
MAX_OBSTACLES = 64
MAX_EXTRAPOLATION = 0.1  # s
REPORTED = 8  # obstacles with problems named in set's answer; the rest are counted
LOG_INTERVAL = 10.0  # s between two warnings about the obstacles dropped


class ObstacleArgs(NamedTuple):
    capsules: object  # one row a capsule: a, b, radius (already scaled by the fade weight), velocity
    count: object
    elapsed: object  # seconds since the snapshot: obstacles move on with their velocity meanwhile


# the layout of a capsule's row (ObstacleArgs.capsules, types.capsule)
A, B, RADIUS, VELOCITY = 0, 3, 6, 7


@ti.func
def _row3(c, k: ti.template()) -> vec3:
    return vec3(c[k], c[k + 1], c[k + 2])


@ti.func
def capsule_distance(p: vec3, a: vec3, b: vec3):
    """Distance from p to the segment a-b, and the unit direction from the segment to p."""
    ab = b - a
    t = 0.0
    L2 = ab.norm_sqr()
    if L2 > 1e-12:
        t = ti.math.clamp((p - a).dot(ab) / L2, 0.0, 1.0)
    q = p - (a + t * ab)
    dist = q.norm()
    n = vec3(0.0, 1.0, 0.0)
    if dist > 1e-9:
        n = q / dist
    return dist, n


@ti.func
def obstacle_distance(p: vec3, k, o: ti.template()):
    """Distance from p to the axis of obstacle k where it is now (moved on by its velocity since
    the snapshot), and the unit direction from the axis to p."""
    c = o.capsules[k]
    shift = _row3(c, VELOCITY) * o.elapsed
    return capsule_distance(p, _row3(c, A) + shift, _row3(c, B) + shift)


@ti.func
def obstacle_reach(k, contact: ti.f32, o: ti.template()) -> ti.f32:
    """How close to its axis obstacle k lets water come. An obstacle adds no density, so it keeps
    the water a particle radius away from its surface: twice the solids' collision distance."""
    return o.capsules[k][RADIUS] + 2.0 * contact


@ti.func
def blocked_by_obstacle(p: vec3, margin: ti.f32, contact: ti.f32, o: ti.template()) -> bool:
    """Whether p lies within ``margin`` of the water's side of an obstacle's reach."""
    blocked = False
    for k in range(o.count):
        dist, _ = obstacle_distance(p, k, o)
        if dist < obstacle_reach(k, contact, o) + margin:
            blocked = True
    return blocked


@ti.func
def collide_obstacles(p: vec3, v: vec3, contact: ti.f32, friction: ti.f32, o: ti.template()):
    """Push p out of every capsule and give it the capsule's velocity."""
    for k in range(o.count):
        dist, n = obstacle_distance(p, k, o)
        reach = obstacle_reach(k, contact, o)
        if dist < reach:
            p += (reach - dist) * n
            u = _row3(o.capsules[k], VELOCITY)
            rel = v - u
            rn = rel.dot(n)
            if rn < 0.0:
                rel -= rn * n
            rel -= friction * (rel - rel.dot(n) * n)
            v = u + rel
    return p, v


@ti.kernel
def upload(packed: nd_f32_2d, count: ti.i32, capsules: nd_capsule):
    """The obstacles from one host array of rows (a, b, radius x weight, velocity), the first
    ``count`` of them: one launch. Taichi 1.7 keeps a few bytes for each launch with a host array
    (measured in a running solver: about 6), so the fewer a frame, the slower the app's memory
    creeps (state.ParticleState.read_active)."""
    for k in range(count):
        for j in ti.static(range(10)):
            capsules[k][j] = packed[k, j]


class Obstacles:
    """Device copies of the latest ObstacleSnapshot, at most MAX_OBSTACLES of them."""

    def __init__(self):
        self.capsules = ti.ndarray(capsule, MAX_OBSTACLES)
        self.count = 0
        self.snapshot = ObstacleSnapshot.empty()
        self.elapsed = 0.0
        # a tracker gone wrong sends its thousands every frame: one line per LOG_INTERVAL, not 20,000 a frame
        self.dropped = RateLimitedLog(log, LOG_INTERVAL)

    def set(self, snapshot: ObstacleSnapshot) -> list[str]:
        """Upload a snapshot. Obstacles with NaN or absurd values are dropped, and so are those
        past the first MAX_OBSTACLES valid ones, in bulk (numpy over the snapshot, never a Python
        loop over its obstacles), with one rate-limited warning; the rest act. Returns the
        problems found: those of the first REPORTED obstacles that have any, and a count."""
        ok = snapshot.valid_mask()
        acting = np.flatnonzero(ok)
        problems = [] if len(acting) == len(ok) else snapshot.problems(REPORTED)
        excess = max(len(acting) - MAX_OBSTACLES, 0)
        good = snapshot if len(acting) == len(ok) and not excess else snapshot.select(acting[:MAX_OBSTACLES])
        if problems or excess:
            self._warn_dropped(len(snapshot), len(ok) - len(acting), excess, problems)
        m = len(good)
        if m:
            packed = np.concatenate(
                [good.a, good.b, (good.radius * good.weight)[:, None], good.velocity], axis=1, dtype=np.float32
            )
            upload(packed, m, self.capsules)  # concatenate's array is contiguous
        self.count = m
        self.snapshot = good
        self.elapsed = 0.0
        return problems

    def _warn_dropped(self, total: int, bad: int, excess: int, problems: list[str]) -> None:
        parts = []
        if bad:
            parts.append(f"{bad:,} of {total:,} obstacles with NaN or absurd values ({problems[0]})")
        if excess:
            parts.append(f"{excess:,} valid obstacles beyond the first {MAX_OBSTACLES}, which alone act on the water")
        self.dropped.warning("obstacle ignored: %s", "; ".join(parts))

    def args(self) -> tuple:
        return (self.capsules, self.count, min(self.elapsed, MAX_EXTRAPOLATION))
