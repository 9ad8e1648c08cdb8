"""Weakly compressible SPH: Becker & Teschner 2007, "Weakly compressible SPH for free surface
flows" (SCA). The reference baseline.

    p_i   = B ((rho_i / rho0)^gamma - 1),  clamped at 0                               (eq. 7)
    a_i   = g - sum_j m_j (p_i / rho_i^2 + p_j / rho_j^2) grad W_ij - (p_i / rho_i^2) grad rho_b   (eq. 6)

with symplectic Euler, XSPH viscosity, and the density-map boundary of boundary.py (pressure
mirrored as in Akinci et al. 2012, eq. 9). The speed of sound c = sqrt(B gamma / rho0) enters
the CFL condition: dt <= cfl * spacing / (c + max speed).
"""

import math
from typing import NamedTuple

import taichi as ti

from waterrock.solver.boundary import BoundaryArgs
from waterrock.solver.grid import GridArgs, for_each_neighbor, nd_ivec3
from waterrock.solver.kernels import cubic_W_gradW
from waterrock.solver.state import ACTIVE
from waterrock.solver.terms import Fluid, density, xsph_boundary, xsph_pair

vec3 = ti.math.vec3
ivec3 = ti.math.ivec3
nd_vec3 = ti.types.ndarray(dtype=vec3, ndim=1)
nd_vec4 = ti.types.ndarray(dtype=ti.math.vec4, ndim=1)
nd_i32 = ti.types.ndarray(dtype=ti.i32, ndim=1)
nd_f32 = ti.types.ndarray(dtype=ti.f32, ndim=1)
nd_f32_3d = ti.types.ndarray(dtype=ti.f32, ndim=3)


@ti.kernel
def density_and_pressure(
    x: nd_vec3, flags: nd_i32, rho: nd_f32, k: nd_f32, wall: nd_vec4,
    cell_start: nd_i32, g_origin: nd_vec3, g_shape: nd_ivec3, h: ti.f32,
    b_params: nd_f32, gamma: nd_f32, area: nd_f32, sdf: nd_f32_3d,
    mass: ti.f32, rho0: ti.f32, stiffness: ti.f32, exponent: ti.f32,
):
    """rho_i, and k_i = p_i / rho_i^2 from Tait's equation (eq. 7); the solids' map at x_i."""
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h))
    b = ti.static(BoundaryArgs(b_params, gamma, area, h, sdf))
    f = ti.static(Fluid(mass, rho0, h))
    for i in x:
        if flags[i] & ACTIVE:
            rho_i, wall_i = density(i, x[i], g, b, f)
            p = ti.max(stiffness * ((rho_i / rho0) ** exponent - 1.0), 0.0)
            rho[i] = rho_i
            wall[i] = wall_i
            k[i] = p / (rho_i * rho_i)


class _Momentum(NamedTuple):
    k: object
    v: object  # the XSPH arguments follow (terms.XSPHArgs)
    rho: object
    mass: object
    h: object


@ti.func
def _momentum_task(i, j, r: vec3, ret: ti.template(), c: ti.template()):
    """One pass for both sums over j: ret[0:3] the pressure acceleration (eq. 6),
    ret[3:6] the XSPH term."""
    w, grad_w = cubic_W_gradW(r, c.h)
    a = -c.mass * (c.k[i] + c.k[j]) * grad_w
    s = xsph_pair(i, j, w, c)
    ret += ti.Vector([a.x, a.y, a.z, s.x, s.y, s.z])


@ti.kernel
def accelerate(
    x: nd_vec3, v: nd_vec3, flags: nd_i32, rho: nd_f32, k: nd_f32, wall: nd_vec4, v_out: nd_vec3,
    cell_start: nd_i32, g_origin: nd_vec3, g_shape: nd_ivec3, h: ti.f32,
    mass: ti.f32, rho0: ti.f32, dt: ti.f32, gravity: nd_vec3, c_xsph: ti.f32, c_wall: ti.f32,
):
    """v_i + dt a_i (eq. 6), smoothed by XSPH, with the solid as a neighbour at rest."""
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h))
    c = ti.static(_Momentum(k, v, rho, mass, h))
    for i in x:
        vi = v[i]
        if flags[i] & ACTIVE:
            sums = ti.Vector([0.0] * 6)
            for_each_neighbor(i, x[i], g, _momentum_task, sums, c)
            a = gravity[0] + vec3(sums[0], sums[1], sums[2]) - k[i] * rho0 * wall[i].xyz
            vi += dt * a + c_xsph * vec3(sums[3], sums[4], sums[5])
            vi += c_wall * xsph_boundary(wall[i].w, vi)
        v_out[i] = vi


class WCSPH:
    name = "wcsph"

    def __init__(self, settings, fluid):
        self.stiffness = settings.stiffness
        self.exponent = settings.exponent
        self.c_xsph = fluid.viscosity
        self.sound_speed = math.sqrt(self.stiffness * self.exponent / fluid.rest_density)

    def substep(self, s, dt: float) -> None:
        st, grid = s.state, s.grid
        b_args = s.boundary.args_without_h()
        grid.build(st, s.dispatch)
        g_args = grid.args()
        s.dispatch(
            density_and_pressure, st.x, st.flags, st.rho, st.aux, st.wall, *g_args, *b_args, s.mass, s.rho0,
            self.stiffness, self.exponent,
        )
        s.dispatch(
            accelerate, st.x, st.v, st.flags, st.rho, st.aux, st.wall, st.dv, *g_args, s.mass, s.rho0, dt, s.gravity,
            self.c_xsph, s.wall_xsph(dt),
        )
        st.swap_velocity_scratch()
        s.advect(dt)

    def pressure(self, s):
        rho = s.state.rho.to_numpy()
        return s.state.aux.to_numpy() * rho * rho
