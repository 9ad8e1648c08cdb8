"""Solid boundaries: the domain's walls and the rock, as signed distances.

Two effects, one model. The boundary's contribution to a particle's density is that of a
density map (Koschier & Bender 2017, "Density maps for improved SPH boundary handling"), with
the boundary taken as locally planar so that one precomputed table of the kernel's half-space
integral serves every wall and the rock:

    rho_b(x) = rho0 Gamma(d(x)),    grad rho_b(x) = -rho0 A(d(x)) n(x)

where d is the signed distance to the solid (positive in the fluid), n = grad d, and Gamma, A
are the tables of :func:`waterrock.solver.kernels.half_space_tables`. The six walls are added
up one by one, which is exact along a wall and counts a box's corner wedge twice; the rock adds
its own term from its signed-distance volume (the rock mesh's SDF, built once by
:mod:`waterrock.solver.mesh_sdf` and cached on disk).

Collision is the second effect: a particle that still comes closer to a solid than its radius
(a fast one, or one driven by a large step) is projected back out and loses its velocity into
the solid; the rock's friction takes a share of its sliding velocity.
"""

from typing import NamedTuple

import numpy as np
import taichi as ti

from waterrock.solver.kernels import half_space_tables, lattice_wall_correction
from waterrock.solver.types import vec2, vec3

FAR = 1.0e3  # distance reported outside the rock's SDF volume: no contribution, no contact
TABLE_SAMPLES = 256


class BoundaryArgs(NamedTuple):
    params: object  # the constants below, in one f32 array: a vec3 kernel argument costs Taichi
    # 1.7 about 23 us of Python per launch, an array about 4 us
    table: object  # (Gamma(d), A(d) = -dGamma/dd) for d in [-h, h]: one array, so the two cannot be swapped
    h: object
    sdf: object  # rock SDF values (nx, ny, nz), negative inside


# the layout of BoundaryArgs.params
LOWER, UPPER, SDF_ORIGIN = 0, 3, 6  # the domain box's corners and the SDF's origin (3 each)
SDF_INV_CELL, CONTACT, FRICTION = 9, 10, 11  # 1 / SDF cell; collision distance; the rock's friction
N_PARAMS = 12


@ti.func
def _vec(b: ti.template(), k: ti.template()) -> vec3:
    return vec3(b.params[k], b.params[k + 1], b.params[k + 2])


@ti.func
def contact(b: ti.template()) -> ti.f32:
    """The collision distance: a quarter spacing."""
    return b.params[CONTACT]


@ti.func
def friction(b: ti.template()) -> ti.f32:
    """The share of sliding velocity lost on the rock."""
    return b.params[FRICTION]


@ti.func
def _table(t: ti.template(), d: ti.f32, h: ti.f32) -> vec2:
    """(Gamma(d), A(d)), interpolated linearly between the table's samples."""
    n = t.shape[0]
    u = ti.math.clamp((d + h) / (2.0 * h) * (n - 1), 0.0, n - 1.0001)
    k = ti.cast(ti.floor(u), ti.i32)
    f = u - k
    return t[k] * (1.0 - f) + t[k + 1] * f


@ti.func
def rock_distance(p: vec3, b: ti.template()):
    """Signed distance to the rock and its gradient, by trilinear interpolation of the SDF."""
    u = (p - _vec(b, SDF_ORIGIN)) * b.params[SDF_INV_CELL]
    nx, ny, nz = b.sdf.shape[0], b.sdf.shape[1], b.sdf.shape[2]
    d = FAR
    n = vec3(0.0, 1.0, 0.0)
    if 0.0 <= u.x < nx - 1 and 0.0 <= u.y < ny - 1 and 0.0 <= u.z < nz - 1:
        i, j, k = ti.cast(ti.floor(u.x), ti.i32), ti.cast(ti.floor(u.y), ti.i32), ti.cast(ti.floor(u.z), ti.i32)
        fx, fy, fz = u.x - i, u.y - j, u.z - k
        c000, c100 = b.sdf[i, j, k], b.sdf[i + 1, j, k]
        c010, c110 = b.sdf[i, j + 1, k], b.sdf[i + 1, j + 1, k]
        c001, c101 = b.sdf[i, j, k + 1], b.sdf[i + 1, j, k + 1]
        c011, c111 = b.sdf[i, j + 1, k + 1], b.sdf[i + 1, j + 1, k + 1]
        c00 = c000 * (1 - fx) + c100 * fx
        c10 = c010 * (1 - fx) + c110 * fx
        c01 = c001 * (1 - fx) + c101 * fx
        c11 = c011 * (1 - fx) + c111 * fx
        c0 = c00 * (1 - fy) + c10 * fy
        c1 = c01 * (1 - fy) + c11 * fy
        d = c0 * (1 - fz) + c1 * fz
        # the analytic gradient of the trilinear interpolant
        gx = ((c100 - c000) * (1 - fy) + (c110 - c010) * fy) * (1 - fz) + (
            (c101 - c001) * (1 - fy) + (c111 - c011) * fy
        ) * fz
        gy = (c10 - c00) * (1 - fz) + (c11 - c01) * fz
        gz = c1 - c0
        g = vec3(gx, gy, gz)
        if g.norm() > 1e-8:
            n = g.normalized()
    return d, n


@ti.func
def boundary_density(p: vec3, b: ti.template()):
    """(rho_b / rho0, grad(rho_b) / rho0) at p from the six walls and the rock."""
    gamma = 0.0
    grad = vec3(0.0)
    for a in ti.static(range(3)):
        n = vec3(0.0)
        n[a] = 1.0
        d_lo = p[a] - b.params[LOWER + a]
        if d_lo < b.h:
            t = _table(b.table, d_lo, b.h)
            gamma += t[0]
            grad -= t[1] * n
        d_hi = b.params[UPPER + a] - p[a]
        if d_hi < b.h:
            t = _table(b.table, d_hi, b.h)
            gamma += t[0]
            grad += t[1] * n
    d, n = rock_distance(p, b)
    if d < b.h:
        t = _table(b.table, d, b.h)
        gamma += t[0]
        grad -= t[1] * n
    return gamma, grad


@ti.func
def collide_solids(p: vec3, v: vec3, b: ti.template()):
    """Project p out of the walls and the rock to the contact distance; v loses what goes in."""
    lo = _vec(b, LOWER) + contact(b)
    hi = _vec(b, UPPER) - contact(b)
    for a in ti.static(range(3)):
        if p[a] < lo[a]:
            p[a] = lo[a]
            v[a] = ti.max(v[a], 0.0)
        elif p[a] > hi[a]:
            p[a] = hi[a]
            v[a] = ti.min(v[a], 0.0)
    d, n = rock_distance(p, b)
    if d < contact(b):
        p += (contact(b) - d) * n
        vn = v.dot(n)
        if vn < 0.0:
            v -= vn * n
        v -= friction(b) * (v - v.dot(n) * n)
    return p, v


class Boundary:
    """The domain box and the rock, as the arrays and scalars the kernels take."""

    def __init__(self, lower, upper, h: float, spacing: float, rock_sdf=None, friction: float = 0.2):
        self.lower = np.asarray(lower, np.float32)
        self.upper = np.asarray(upper, np.float32)
        self.h = float(h)
        # the density map holds resting water half a spacing from a solid; the collision is the
        # safety net for what comes closer than a quarter spacing (a hard wall at the rest distance
        # would fight the pressure solve, which expects to compress the map a little)
        self.contact = 0.25 * float(spacing)
        self.friction = float(friction)
        gamma, area = half_space_tables(self.h, TABLE_SAMPLES)
        self.lattice_correction = lattice_wall_correction(self.h, float(spacing), gamma)
        gamma, area = gamma * self.lattice_correction, area * self.lattice_correction
        self.table = ti.ndarray(vec2, TABLE_SAMPLES)
        self.table.from_numpy(np.stack([gamma, area], axis=1).astype(np.float32))
        if rock_sdf is None:
            values = np.full((2, 2, 2), FAR, np.float32)
            origin, cell = np.zeros(3, np.float32), 1.0
        else:
            values = np.ascontiguousarray(rock_sdf.values, np.float32)
            origin, cell = np.asarray(rock_sdf.origin, np.float32), float(rock_sdf.cell_size)
        self.rock_sdf = rock_sdf
        self.sdf = ti.ndarray(ti.f32, values.shape)
        self.sdf.from_numpy(values)
        self.sdf_origin = origin
        self.sdf_inv_cell = 1.0 / cell
        params = np.zeros(N_PARAMS, np.float32)
        params[LOWER:LOWER + 3], params[UPPER:UPPER + 3] = self.lower, self.upper
        params[SDF_ORIGIN:SDF_ORIGIN + 3] = origin
        params[[SDF_INV_CELL, CONTACT, FRICTION]] = self.sdf_inv_cell, self.contact, self.friction
        self.params = ti.ndarray(ti.f32, N_PARAMS)
        self.params.from_numpy(params)

    def args_without_h(self) -> tuple:
        """Kernel arguments in BoundaryArgs order less h, for kernels that take h with the grid's."""
        return (self.params, self.table, self.sdf)

    def args(self) -> tuple:
        """Kernel arguments in BoundaryArgs order."""
        return (self.params, self.table, self.h, self.sdf)
