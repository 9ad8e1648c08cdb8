"""Weakly compressible SPH: Becker & Teschner 2007, "Weakly compressible SPH for free surface
flows" (SCA). The reference baseline.

    p_i   = B ((rho_i / rho0)^gamma - 1),  clamped at 0                               (eq. 7)
    a_i   = g - sum_j m_j (p_i / rho_i^2 + p_j / rho_j^2) grad W_ij - (p_i / rho_i^2) grad rho_b   (eq. 6)

with symplectic Euler, XSPH viscosity, and the density-map boundary of boundary.py (pressure
mirrored as in Akinci et al. 2012, eq. 9). The speed of sound c = sqrt(B gamma / rho0) enters
the CFL condition: dt <= cfl * spacing / (c + max speed). The density pass leaves, besides
rho_i, k_i = p_i / rho_i^2 and the volume V_i = m_i / rho_i, which the momentum pass reads for
every pair (two loads, where a division by rho_j would cost more).

Both passes come in two forms with the same terms, each written once as a pair task: a kernel
gathers every neighbour of its particle and finishes it at once (a GPU, or a CPU with few
particles), or, on a CPU with many (neighbors.pairs_suit), the sums are taken in pair form, every
pair once (neighbors.pair_pass), and a kernel finishes the particles after.
"""

import math
from typing import NamedTuple

import taichi as ti

from waterrock.solver.boundary import BoundaryArgs
from waterrock.solver.kernels import cubic_W_gradW
from waterrock.solver.neighbors import (
    GridArgs,
    for_each_neighbor,
    pair_as_task,
    pair_pass,
    pair_tasks,
    pairs_in_block,
    pairs_suit,
)
from waterrock.solver.obstacles import ObstacleArgs
from waterrock.solver.state import ACTIVE, MethodData, in_use
from waterrock.solver.terms import Fluid, density_pair, density_task, move, with_solids, xsph_boundary, xsph_term
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


@ti.kernel
def density_pairs(
    x: nd_vec3, rho: nd_f32, cell_start: nd_i32, g_origin: nd_vec3, g_shape: nd_ivec3, h: ti.f32,
    g_list: nd_i32, g_count: nd_i32, mass: ti.f32, rho0: ti.f32, colour: ti.i32,
):
    """The fluid's sum_j m_j W_ij into rho, for the blocks of one colour (neighbors.pairs_in_block)."""
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h, g_list, g_count))
    f = ti.static(Fluid(mass, rho0, h))
    for t in range(pair_tasks(g, colour)):
        pairs_in_block(t, colour, g, density_pair, rho, f)


@ti.kernel
def pressure_from_sums(
    x: nd_vec3, flags: nd_i32, free_head: nd_i32, rho: nd_f32, k: nd_f32, volume: nd_f32, wall: nd_vec4, dv: nd_vec3,
    b_params: nd_f32, wall_table: nd_vec2, h: ti.f32, sdf: nd_f32_3d,
    mass: ti.f32, rho0: ti.f32, stiffness: ti.f32, exponent: ti.f32, whole: ti.i32,
):
    """rho_i, k_i and V_i from the fluid's sums that density_pairs left in rho; and dv_i, where
    momentum_pairs will sum, zeroed (pair_pass's clearing, without a kernel of its own)."""
    b = ti.static(BoundaryArgs(b_params, wall_table, h, sdf))
    for i in range(in_use(free_head, x)):
        if flags[i] & ACTIVE:
            _finish_density(i, rho[i], x, rho, k, volume, wall, b, mass, rho0, stiffness, exponent, whole)
            dv[i] = vec3(0.0)


_OwnMomentum = ti.types.struct(k=ti.f32, v=vec3, volume=ti.f32)


@ti.func
def _read_momentum(i, c: ti.template()):
    return _OwnMomentum(k=c.k[i], v=c.v[i], volume=c.volume[i])


class _Momentum(NamedTuple):
    k: object
    v: object
    volume: object
    mass: object
    h: object
    dt: object
    c_xsph: object
    own: object = None  # k_i, v_i, V_i (neighbors.with_own)
    read_own = staticmethod(_read_momentum)


@ti.func
def _momentum_pair(i, j, r: vec3, ret_i: ti.template(), ret_j: ti.template(), c: ti.template()):
    """The pair's share of v_i's and v_j's change: dt times the pressure acceleration (eq. 6),
    equal and opposite, and the XSPH terms."""
    w, grad_w = cubic_W_gradW(r, c.h)
    dv_p = -c.dt * c.mass * (c.own.k + c.k[j]) * grad_w
    v_ji = c.v[j] - c.own.v
    ret_i += dv_p + c.c_xsph * xsph_term(c.volume[j], v_ji, w)
    ret_j += -dv_p + c.c_xsph * xsph_term(c.own.volume, -v_ji, w)


_momentum_task = pair_as_task(_momentum_pair)


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


@ti.kernel
def momentum_pairs(
    x: nd_vec3, v: nd_vec3, volume: nd_f32, k: nd_f32, dv: nd_vec3,
    cell_start: nd_i32, g_origin: nd_vec3, g_shape: nd_ivec3, h: ti.f32, g_list: nd_i32, g_count: nd_i32,
    mass: ti.f32, dt: ti.f32, c_xsph: ti.f32, colour: ti.i32,
):
    """accelerate's sums over j into dv, for the blocks of one colour (neighbors.pairs_in_block)."""
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h, g_list, g_count))
    c = ti.static(_Momentum(k, v, volume, mass, h, dt, c_xsph))
    for t in range(pair_tasks(g, colour)):
        pairs_in_block(t, colour, g, _momentum_pair, dv, c)


@ti.kernel
def accelerate_and_move(
    x: nd_vec3, v: nd_vec3, flags: nd_i32, free_head: nd_i32, k: nd_f32, wall: nd_vec4, dv: nd_vec3,
    rho0: ti.f32, dt: ti.f32, gravity: nd_vec3, c_wall: ti.f32, v_max: ti.f32,
    b_params: nd_f32, wall_table: nd_vec2, h: ti.f32, sdf: nd_f32_3d,
    o_capsules: nd_capsule, o_count: ti.i32, o_elapsed: ti.f32,
):
    """accelerate's velocities, from the fluid's share that momentum_pairs left in dv, and the
    move that follows them (terms.advect), in one pass over the particles: no neighbour reads
    v any more once every colour is done, so v_i is written in place."""
    b = ti.static(BoundaryArgs(b_params, wall_table, h, sdf))
    o = ti.static(ObstacleArgs(o_capsules, o_count, o_elapsed))
    for i in range(in_use(free_head, x)):
        if flags[i] & ACTIVE:
            vi = _new_velocity(v[i], dv[i], k[i], wall[i], rho0, dt, gravity[0], c_wall)
            x[i], v[i] = move(x[i], vi, dt, v_max, b, o)


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
    # active particles from which a CPU takes the pair form (neighbors.pairs_suit); measured on 2
    # cores, the dam break, median ms a substep gathering / in pairs: 4k 3.2-3.6 / 3.2-3.4,
    # 8k 4.7-4.8 / 3.8-4.4, 16k 9.4-11.9 / 6.2
    PAIRS_FROM = 8_000

    def __init__(self, settings, fluid, state):
        self.data = WCSPHData(state)
        self.stiffness = settings.stiffness
        self.exponent = settings.exponent
        self.c_xsph = fluid.viscosity
        self.whole_exponent = int(self.exponent) if float(self.exponent).is_integer() else 0  # see _tait_power
        self.sound_speed = math.sqrt(self.stiffness * self.exponent / fluid.rest_density)
        self.pairs = None  # the sums in pair form (neighbors.for_each_pair): None picks (neighbors.pairs_suit)

    def substep(self, s, dt: float) -> None:
        st, grid, d = s.state, s.grid, self.data
        b_args = s.boundary.args_without_h()
        pairs = self.pairs if self.pairs is not None else pairs_suit(s.active, self.PAIRS_FROM)
        grid.build(st, s.dispatch, lists=not pairs)
        g_args = grid.args()
        tait = (s.mass, s.rho0, self.stiffness, self.exponent, self.whole_exponent)
        if pairs:
            pair_pass(s.dispatch, density_pairs, st.rho, grid.cell_start, st.x, st.rho, *g_args, s.mass, s.rho0)
            s.dispatch(pressure_from_sums, st.x, st.flags, st.free_head, st.rho, d.k, d.volume, st.wall, st.dv,
                       *s.boundary.args(), *tait)
            pair_pass(s.dispatch, momentum_pairs, st.dv, grid.cell_start, st.x, st.v, d.volume, d.k, st.dv,
                      *g_args, s.mass, dt, self.c_xsph, cleared=True)
            s.dispatch(accelerate_and_move, st.x, st.v, st.flags, st.free_head, d.k, st.wall, st.dv, s.rho0, dt,
                s.gravity,
                       s.wall_xsph(dt), s.v_max(dt), *s.boundary.args(), *s.obstacles.args())
        else:
            s.dispatch(density_and_pressure, st.x, st.flags, st.free_head, st.rho, d.k, d.volume, st.wall,
                *g_args, *b_args,
                       *tait)
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
