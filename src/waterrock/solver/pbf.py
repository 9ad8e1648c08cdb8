"""Position Based Fluids: Macklin & Mueller 2013, "Position based fluids", ACM TOG 32(4).

The real-time default: the density constraint C_i = rho_i / rho0 - 1 (eq. 1) is solved on the
predicted positions by a few Jacobi iterations, which stays stable at frame-sized steps.

    lambda_i = -C_i / (sum_k |grad_pk C_i|^2 + epsilon)                              (eq. 11)
    dp_i     = (1 / rho0) sum_j m_j (lambda_i + lambda_j + s_corr) grad W_ij          (eq. 12, 14)
    s_corr   = -k (W(r_ij) / W(dq))^n / D0, k = 0.1, n = 4, |dq| = 0.2 h             (eq. 13)
    omega_i  = sum_j (m_j / rho_j) v_ij x grad_pj W_ij,  f_i = eps (N x omega_i)     (eq. 15, 16)
    XSPH     v_i += c sum_j (m_j / rho_j) v_ij W_ij                                   (eq. 17)

C_i is clamped at zero (the constraint only resists compression), so that particles at the free
surface do not clump; the solid boundary adds rho0 Gamma(d) to rho_i and its gradient to
grad C_i (see boundary.py).
"""

from typing import NamedTuple

import numpy as np
import taichi as ti

from waterrock.solver.boundary import BoundaryArgs, boundary_density
from waterrock.solver.grid import GridArgs, for_each_neighbor, nd_ivec3
from waterrock.solver.kernels import cubic_gradW, cubic_gradW_np, cubic_W_gradW, cubic_W_np
from waterrock.solver.obstacles import ObstacleArgs
from waterrock.solver.state import ACTIVE
from waterrock.solver.terms import Fluid, clamp_speed, collide, density_and_grad_sums, move, xsph_boundary, xsph_pair

vec3 = ti.math.vec3
ivec3 = ti.math.ivec3
nd_vec3 = ti.types.ndarray(dtype=vec3, ndim=1)
nd_vec4 = ti.types.ndarray(dtype=ti.math.vec4, ndim=1)
nd_i32 = ti.types.ndarray(dtype=ti.i32, ndim=1)
nd_f32 = ti.types.ndarray(dtype=ti.f32, ndim=1)
nd_f32_3d = ti.types.ndarray(dtype=ti.f32, ndim=3)

SCORR_K = 0.1
SCORR_N = 4
SCORR_DQ = 0.2  # |dq| / h


@ti.kernel
def predict(
    x: nd_vec3,
    v: nd_vec3,
    x0: nd_vec3,
    flags: nd_i32,
    dt: ti.f32,
    gravity: nd_vec3,
    v_max: ti.f32,
    b_params: nd_f32,
    gamma: nd_f32,
    area: nd_f32,
    h: ti.f32,
    sdf: nd_f32_3d,
    o_a: nd_vec3,
    o_b: nd_vec3,
    o_radius: nd_f32,
    o_velocity: nd_vec3,
    o_count: ti.i32,
    o_elapsed: ti.f32,
):
    """Apply gravity and predict x* = x + dt v (Algorithm 1, lines 2-3), out of the solids."""
    b = ti.static(BoundaryArgs(b_params, gamma, area, h, sdf))
    o = ti.static(ObstacleArgs(o_a, o_b, o_radius, o_velocity, o_count, o_elapsed))
    for i in x:
        if flags[i] & ACTIVE:
            x0[i] = x[i]
            x[i], v[i] = move(x[i], v[i] + dt * gravity[0], dt, v_max, b, o)


@ti.kernel
def constraint_lambda(
    x: nd_vec3,
    flags: nd_i32,
    rho: nd_f32,
    lam: nd_f32,
    wall: nd_vec4,
    cell_start: nd_i32,
    g_origin: nd_vec3,
    g_shape: nd_ivec3,
    h: ti.f32,
    b_params: nd_f32,
    gamma: nd_f32,
    area: nd_f32,
    sdf: nd_f32_3d,
    mass: ti.f32,
    rho0: ti.f32,
    relaxation: ti.f32,
):
    """lambda_i, eq. 11, with the boundary's share of rho_i and of grad_pi C_i; the solids'
    density map at x*_i, which position_delta reads at the same positions."""
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h))
    b = ti.static(BoundaryArgs(b_params, gamma, area, h, sdf))
    f = ti.static(Fluid(mass, rho0, h))
    for i in x:
        if flags[i] & ACTIVE:
            xi = x[i]
            rho_i, wall_i, sum_grad, sum_sq = density_and_grad_sums(i, xi, g, b, f)
            wall[i] = wall_i
            grad_i = sum_grad / rho0 + wall_i.xyz  # grad_pi C_i
            denom = grad_i.norm_sqr() + sum_sq / (rho0 * rho0)
            C = ti.max(rho_i / rho0 - 1.0, 0.0)
            rho[i] = rho_i
            lam[i] = -C / (denom + relaxation)


class _Delta(NamedTuple):
    lam: object
    mass: object
    h: object
    w_dq: object  # W(|dq|)
    scorr_scale: object  # k / D0, see PBF.__init__


@ti.func
def _delta_task(i, j, r: vec3, ret: ti.template(), c: ti.template()):
    w, grad_w = cubic_W_gradW(r, c.h)
    s_corr = -c.scorr_scale * (w / c.w_dq) ** SCORR_N  # eq. 13
    ret += c.mass * (c.lam[i] + c.lam[j] + s_corr) * grad_w


@ti.kernel
def position_delta(
    x: nd_vec3,
    flags: nd_i32,
    lam: nd_f32,
    wall: nd_vec4,
    dp: nd_vec3,
    cell_start: nd_i32,
    g_origin: nd_vec3,
    g_shape: nd_ivec3,
    h: ti.f32,
    mass: ti.f32,
    rho0: ti.f32,
    w_dq: ti.f32,
    scorr_scale: ti.f32,
):
    """dp_i, eq. 12 with s_corr (eq. 14), plus lambda_i times the boundary's grad_pi C_i."""
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h))
    c = ti.static(_Delta(lam, mass, h, w_dq, scorr_scale))
    for i in x:
        if flags[i] & ACTIVE:
            xi = x[i]
            acc = vec3(0.0)
            for_each_neighbor(i, xi, g, _delta_task, acc, c)
            dp[i] = acc / rho0 + lam[i] * wall[i].xyz


@ti.kernel
def apply_delta(
    x: nd_vec3,
    v: nd_vec3,
    flags: nd_i32,
    dp: nd_vec3,
    b_params: nd_f32,
    gamma: nd_f32,
    area: nd_f32,
    h: ti.f32,
    sdf: nd_f32_3d,
    o_a: nd_vec3,
    o_b: nd_vec3,
    o_radius: nd_f32,
    o_velocity: nd_vec3,
    o_count: ti.i32,
    o_elapsed: ti.f32,
):
    """x*_i += dp_i, then collision response on the positions (Algorithm 1, lines 13-15)."""
    b = ti.static(BoundaryArgs(b_params, gamma, area, h, sdf))
    o = ti.static(ObstacleArgs(o_a, o_b, o_radius, o_velocity, o_count, o_elapsed))
    for i in x:
        if flags[i] & ACTIVE:
            x[i], v[i] = collide(x[i] + dp[i], v[i], b, o)


@ti.kernel
def update_velocity(x: nd_vec3, x0: nd_vec3, v: nd_vec3, flags: nd_i32, inv_dt: ti.f32, v_max: ti.f32):
    """v_i = (x*_i - x_i) / dt (Algorithm 1, line 21)."""
    for i in x:
        if flags[i] & ACTIVE:
            v[i] = clamp_speed((x[i] - x0[i]) * inv_dt, v_max)


class _Vort(NamedTuple):
    v: object
    rho: object
    omega: object
    mass: object
    h: object


@ti.func
def _vorticity_task(i, j, r: vec3, ret: ti.template(), c: ti.template()):
    # grad_pj W_ij = -grad_pi W_ij
    ret += c.mass / c.rho[j] * (c.v[j] - c.v[i]).cross(-cubic_gradW(r, c.h))


@ti.kernel
def vorticity(
    x: nd_vec3,
    v: nd_vec3,
    flags: nd_i32,
    rho: nd_f32,
    omega: nd_vec3,
    cell_start: nd_i32,
    g_origin: nd_vec3,
    g_shape: nd_ivec3,
    h: ti.f32,
    mass: ti.f32,
):
    """omega_i, eq. 15, with the SPH volume m_j / rho_j."""
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h))
    c = ti.static(_Vort(v, rho, omega, mass, h))
    for i in x:
        if flags[i] & ACTIVE:
            acc = vec3(0.0)
            for_each_neighbor(i, x[i], g, _vorticity_task, acc, c)
            omega[i] = acc


@ti.func
def _eta_xsph_task(i, j, r: vec3, ret: ti.template(), c: ti.template()):
    """One pass for both sums over j: ret[0:3] eta = grad |omega| (eq. 16), ret[3:6] XSPH (eq. 17)."""
    w, grad_w = cubic_W_gradW(r, c.h)
    e = c.mass / c.rho[j] * (c.omega[j].norm() - c.omega[i].norm()) * grad_w
    s = xsph_pair(i, j, w, c)
    ret += ti.Vector([e.x, e.y, e.z, s.x, s.y, s.z])


@ti.kernel
def confine_and_smooth(
    x: nd_vec3,
    v: nd_vec3,
    flags: nd_i32,
    rho: nd_f32,
    omega: nd_vec3,
    v_out: nd_vec3,
    cell_start: nd_i32,
    g_origin: nd_vec3,
    g_shape: nd_ivec3,
    h: ti.f32,
    b_params: nd_f32,
    gamma: nd_f32,
    area: nd_f32,
    sdf: nd_f32_3d,
    mass: ti.f32,
    dt: ti.f32,
    epsilon: ti.f32,
    c_xsph: ti.f32,
    c_wall: ti.f32,
):
    """Vorticity confinement (eq. 16, with eta = grad |omega|) and XSPH viscosity (eq. 17),
    with the solid as a neighbour at rest."""
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h))
    b = ti.static(BoundaryArgs(b_params, gamma, area, h, sdf))
    c = ti.static(_Vort(v, rho, omega, mass, h))
    for i in x:
        vi = v[i]
        if flags[i] & ACTIVE:
            sums = ti.Vector([0.0] * 6)
            for_each_neighbor(i, x[i], g, _eta_xsph_task, sums, c)
            eta = vec3(sums[0], sums[1], sums[2])
            if eta.norm() > 1e-9:
                N = eta.normalized()
                vi += dt * epsilon * N.cross(omega[i])
            vi += c_xsph * vec3(sums[3], sums[4], sums[5])
            gamma_b, _ = boundary_density(x[i], b)
            vi += c_wall * xsph_boundary(gamma_b, vi)
        v_out[i] = vi


class PBF:
    """One substep of Algorithm 1 of the paper, on the shared state, grid and boundary."""

    name = "pbf"

    def __init__(self, settings, fluid):
        self.iterations = settings.pbf_iterations
        self.relaxation = settings.pbf_relaxation
        self.vorticity_epsilon = settings.vorticity_epsilon
        self.c_xsph = fluid.viscosity
        h, dx = fluid.support_radius, fluid.spacing
        self.w_dq = float(cubic_W_np(SCORR_DQ * h, h))
        # The paper's s_corr is a pure number added to lambdas, which carry units of m^2 here
        # (SI units, C / |grad C|^2). Dividing k by D0, the denominator of eq. 11 for a particle
        # in a full lattice neighbourhood, makes k what the paper means: the constraint violation
        # that the artificial pressure is worth, independent of the particle size.
        n = int(np.ceil(h / dx))
        g = np.stack(np.meshgrid(*[np.arange(-n, n + 1) * dx] * 3, indexing="ij"), -1).reshape(-1, 3)
        grad_c = dx**3 * cubic_gradW_np(g, h)  # m_j grad W_ij / rho0, with m_j = rho0 dx^3
        self.scorr_scale = SCORR_K / float(np.sum(grad_c**2))

    def substep(self, s, dt: float) -> None:
        st, grid, bnd, obs = s.state, s.grid, s.boundary, s.obstacles
        b_args = bnd.args()
        b_args_noh = bnd.args_without_h()
        s.dispatch(predict, st.x, st.v, st.x0, st.flags, dt, s.gravity, s.v_max(dt), *b_args, *obs.args())
        grid.build(st, s.dispatch)
        g_args = grid.args()
        for _ in range(self.iterations):
            s.dispatch(
                constraint_lambda, st.x, st.flags, st.rho, st.aux, st.wall, *g_args, *b_args_noh, s.mass, s.rho0,
                self.relaxation,
            )
            s.dispatch(
                position_delta, st.x, st.flags, st.aux, st.wall, st.dv, *g_args, s.mass, s.rho0, self.w_dq,
                self.scorr_scale,
            )
            s.dispatch(apply_delta, st.x, st.v, st.flags, st.dv, *b_args, *obs.args())
        s.dispatch(update_velocity, st.x, st.x0, st.v, st.flags, 1.0 / dt, s.v_max(dt))
        s.dispatch(vorticity, st.x, st.v, st.flags, st.rho, st.omega, *g_args, s.mass)
        s.dispatch(
            confine_and_smooth, st.x, st.v, st.flags, st.rho, st.omega, st.dv, *g_args, *b_args_noh, s.mass, dt,
            self.vorticity_epsilon, self.c_xsph, s.wall_xsph(dt),
        )
        st.swap_velocity_scratch()

    def pressure(self, s):
        raise NotImplementedError("PBF solves positions, not pressure: use DFSPH or WCSPH for pressure")
