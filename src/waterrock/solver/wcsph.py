"""Weakly compressible SPH: Becker & Teschner 2007, "Weakly compressible SPH for free surface
flows" (SCA). The reference baseline.

    p_i   = B ((rho_i / rho0)^gamma - 1),  clamped at 0                               (eq. 7)
    a_i   = g - sum_j m_j (p_i / rho_i^2 + p_j / rho_j^2) grad W_ij - (p_i / rho_i^2) grad rho_b   (eq. 6)

with symplectic Euler, XSPH viscosity, and the density-map boundary of boundary.py (pressure
mirrored as in Akinci et al. 2012, eq. 9). The speed of sound c = sqrt(B gamma / rho0) enters
the CFL condition: dt <= cfl * spacing / (c + max speed). The density pass leaves, besides
rho_i, k_i = p_i / rho_i^2 and the volume V_i = m_i / rho_i, which the momentum pass reads for
every neighbour (two loads, where a division by rho_j would cost more). Each pass gathers every
neighbour of its particle (neighbors.for_each_neighbor) and finishes it at once.
"""

import math
from typing import NamedTuple

import taichi as ti

from waterrock.solver.boundary import BoundaryArgs
from waterrock.solver.kernels import cubic_W_gradW
from waterrock.solver.neighbors import GridArgs, for_each_neighbor
from waterrock.solver.obstacles import ObstacleArgs
from waterrock.solver.state import ACTIVE, MethodData, in_use
from waterrock.solver.terms import (
    Fluid,
    density_task,
    move,
    read_velocity_pressure,
    with_solids,
    xsph_boundary,
    xsph_term,
)
from waterrock.solver.types import nd_capsule, nd_f32, nd_f32_3d, nd_i32, nd_ivec3, nd_vec2, nd_vec3, nd_vec4, vec3


@ti.func
def _tait_power(q, exponent, whole):
    """q^gamma of eq. 7. Where gamma is whole (``whole`` > 0; Tait's usual 7), Taichi lowers the
    power to repeated squaring (measured at 16k on 2 cores: the kernel that finishes the density
    took 0.30 ms, against 0.38 with powf)."""
    power = 0.0
    if whole > 0:
        power = q**whole
    else:
        power = q**exponent
    return power


@ti.func
def _finish_density(i, rho_sum, x: ti.template(), rho: ti.template(), k: ti.template(), volume: ti.template(),
                    wall: ti.template(), b: ti.template(), mass, rho0, stiffness, exponent, whole):
    """rho_i = the fluid's sum + the solids' map at x_i, k_i = p_i / rho_i^2 (eq. 7) and the
    volume V_i = m_i / rho_i."""
    rho_i, wall_i = with_solids(rho_sum, x[i], b, rho0)
    p = ti.max(stiffness * (_tait_power(rho_i / rho0, exponent, whole) - 1.0), 0.0)
    rho[i] = rho_i
    volume[i] = mass / rho_i
    wall[i] = wall_i
    k[i] = p / (rho_i * rho_i)


@ti.kernel
def density_and_pressure(
    x: nd_vec3, flags: nd_i32, free_head: nd_i32, rho: nd_f32, k: nd_f32, volume: nd_f32, wall: nd_vec4,
    cell_start: nd_i32, g_origin: nd_vec3, g_shape: nd_ivec3, h: ti.f32, g_list: nd_i32, g_count: nd_i32,
    b_params: nd_f32, wall_table: nd_vec2, sdf: nd_f32_3d,
    mass: ti.f32, rho0: ti.f32, stiffness: ti.f32, exponent: ti.f32, whole: ti.i32,
):
    """rho_i, k_i = p_i / rho_i^2 from Tait's equation (eq. 7) and V_i; the solids' map at x_i."""
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h, g_list, g_count))
    b = ti.static(BoundaryArgs(b_params, wall_table, h, sdf))
    f = ti.static(Fluid(mass, rho0, h))
    for i in range(in_use(free_head, x)):
        if flags[i] & ACTIVE:
            rho_sum = 0.0  # the sum includes j = i: m_i W(0)
            for_each_neighbor(i, x[i], g, density_task, rho_sum, f)
            _finish_density(i, rho_sum, x, rho, k, volume, wall, b, mass, rho0, stiffness, exponent, whole)


class _Momentum(NamedTuple):
    k: object
    v: object
    volume: object
    mass: object
    h: object
    dt: object
    c_xsph: object
    own: object = None  # k_i and v_i (neighbors.with_own)
    read_own = staticmethod(read_velocity_pressure)


@ti.func
def _momentum_task(i, j, r: vec3, ret: ti.template(), c: ti.template()):
    """One neighbour's share of v_i's change: dt times its pressure acceleration (eq. 6), and
    its XSPH term."""
    w, grad_w = cubic_W_gradW(r, c.h)
    dv_p = -c.dt * c.mass * (c.own.k + c.k[j]) * grad_w
    ret += dv_p + c.c_xsph * xsph_term(c.volume[j], c.v[j] - c.own.v, w)


@ti.func
def _new_velocity(vi: vec3, dv_fluid: vec3, k_i, wall_i, rho0, dt, gravity: vec3, c_wall) -> vec3:
    """v_i + dt a_i (eq. 6), smoothed by XSPH, with the solid as a neighbour at rest; dv_fluid is
    what the fluid's neighbours add (_momentum_task)."""
    vi += dv_fluid + dt * (gravity - k_i * rho0 * wall_i.xyz)
    return vi + c_wall * xsph_boundary(wall_i.w, vi)


@ti.kernel
def accelerate(
    x: nd_vec3, v: nd_vec3, flags: nd_i32, free_head: nd_i32, volume: nd_f32, k: nd_f32, wall: nd_vec4,
    x_out: nd_vec3, v_out: nd_vec3, cell_start: nd_i32, g_origin: nd_vec3, g_shape: nd_ivec3, h: ti.f32,
    g_list: nd_i32, g_count: nd_i32,
    mass: ti.f32, rho0: ti.f32, dt: ti.f32, gravity: nd_vec3, c_xsph: ti.f32, c_wall: ti.f32, v_max: ti.f32,
    b_params: nd_f32, wall_table: nd_vec2, sdf: nd_f32_3d,
    o_capsules: nd_capsule, o_count: ti.i32, o_elapsed: ti.f32,
):
    """v_i + dt a_i (eq. 6), smoothed by XSPH, with the solid as a neighbour at rest, and the move
    that follows it (terms.move), into x_out and v_out: the neighbours still read x and v. One
    launch where two were (this and terms.advect): on an H100 a launch costs the stream tens of
    microseconds besides its kernel."""
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h, g_list, g_count))
    c = ti.static(_Momentum(k, v, volume, mass, h, dt, c_xsph))
    b = ti.static(BoundaryArgs(b_params, wall_table, h, sdf))
    o = ti.static(ObstacleArgs(o_capsules, o_count, o_elapsed))
    for i in range(in_use(free_head, x)):
        xi = x[i]
        vi = v[i]
        if flags[i] & ACTIVE:
            dv = vec3(0.0)
            for_each_neighbor(i, xi, g, _momentum_task, dv, c)
            vi = _new_velocity(vi, dv, k[i], wall[i], rho0, dt, gravity[0], c_wall)
            xi, vi = move(xi, vi, dt, v_max, b, o)
        x_out[i] = xi
        v_out[i] = vi


class WCSPHData(MethodData):
    """WCSPH's own per-particle fields (state.MethodData): none kept from one substep to the next,
    so its sort moves x, v, ids and flags alone."""

    SCRATCH = {
        "k": ti.f32,  # the pressure term k_i = p_i / rho_i^2 of eq. 6, p_i from Tait's equation (eq. 7)
        "volume": ti.f32,  # the volume V_i = m_i / rho_i
    }


class WCSPH:
    """One WCSPH substep, on the shared state, grid and boundary, and its own fields (WCSPHData)."""

    name = "wcsph"
    Data = WCSPHData

    def __init__(self, settings, fluid, state):
        self.data = WCSPHData(state)
        self.stiffness = settings.stiffness
        self.exponent = settings.exponent
        self.c_xsph = fluid.viscosity
        self.whole_exponent = int(self.exponent) if float(self.exponent).is_integer() else 0  # see _tait_power
        self.sound_speed = math.sqrt(self.stiffness * self.exponent / fluid.rest_density)

    def substep(self, s, dt: float) -> None:
        st, grid, d = s.state, s.grid, self.data
        b_args = s.boundary.args_without_h()
        grid.build(st, s.dispatch)
        g_args = grid.args()
        s.dispatch(density_and_pressure, st.x, st.flags, st.free_head, st.rho, d.k, d.volume, st.wall, *g_args,
                   *b_args, s.mass, s.rho0, self.stiffness, self.exponent, self.whole_exponent)
        # the moved particles into the back buffer's positions and the scratch dv
        s.dispatch(
            accelerate, st.x, st.v, st.flags, st.free_head, d.volume, d.k, st.wall, st.back.x, st.dv, *g_args,
            s.mass, s.rho0, dt, s.gravity, self.c_xsph, s.wall_xsph(dt), s.v_max(dt), *b_args,
            *s.obstacles.args(),
        )
        st.swap_positions_with_back()
        st.swap_velocity_scratch()

    def pressure(self, s):
        rho = s.state.rho.to_numpy()
        return self.data.k.to_numpy() * rho * rho
