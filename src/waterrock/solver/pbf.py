"""Position Based Fluids: Macklin & Mueller 2013, "Position based fluids", ACM TOG 32(4).

The real-time default: the density constraint C_i = rho_i / rho0 - 1 (eq. 1) is solved on the
predicted positions by a few Jacobi iterations, which stays stable at frame-sized steps.

    lambda_i = -C_i / (sum_k |grad_pk C_i|^2 + epsilon)                              (eq. 11)
    dp_i     = (1 / rho0) sum_j m_j (lambda_i + lambda_j + s_corr) grad W_ij          (eq. 12, 14)
    s_corr   = -k (W(r_ij) / W(dq))^n / D0, k = 0.1, n = 4, |dq| = 0.2 h             (eq. 13)
    omega_i  = sum_j (m_j / rho0) v_ij x grad_pj W_ij,  f_i = eps (N x omega_i)      (eq. 15, 16)
    XSPH     dv_i = c sum_j (m_j / rho0) v_ij W_ij                                    (eq. 17)

C_i is clamped at zero (the constraint only resists compression), so that particles at the free
surface do not clump; the solid boundary adds rho0 Gamma(d) to rho_i and its gradient to
grad C_i (see boundary.py).

A substep is 2 x iterations neighbour passes and no more. Algorithm 1 ends the step with two
passes of its own, vorticity (omega needs the new velocities) then confinement and XSPH (N needs
the neighbours' omega). Here they ride on the first iteration's two passes instead: its lambda
pass sums omega_i and XSPH from the velocities the substep starts with, and its delta pass
sums grad |omega| and moves x*_i by dt dv_i + dt^2 f_i, so that the iterations which follow
project the smoothed, confined motion onto the density constraint and the velocity update
(line 21) carries it. The volumes are m_j / rho0, since the densities are not yet known.

Each term is one task over a particle's neighbours: a pass gathers them
(neighbors.for_each_neighbor) and finishes the particle at once.
"""

from typing import NamedTuple

import numpy as np
import taichi as ti

from waterrock.solver.boundary import BoundaryArgs
from waterrock.solver.kernels import cubic_gradW_np, cubic_W_gradW, cubic_W_np
from waterrock.solver.neighbors import GridArgs, for_each_neighbor
from waterrock.solver.obstacles import ObstacleArgs
from waterrock.solver.state import ACTIVE, MethodData, in_use
from waterrock.solver.terms import (
    clamp_speed,
    collide,
    density_grad_pair,
    move,
    read_velocity,
    with_solids,
    xsph_boundary,
)
from waterrock.solver.types import (
    nd_capsule,
    nd_f32,
    nd_f32_3d,
    nd_i32,
    nd_ivec3,
    nd_vec2,
    nd_vec3,
    nd_vec4,
    vec3,
)

SCORR_K = 0.1
SCORR_N = 4
SCORR_DQ = 0.2  # |dq| / h


class PBFData(MethodData):
    """PBF's own per-particle fields (state.MethodData)."""

    CARRIED = {"x0": vec3}  # x_i at the substep's start, moved by the sort with x*_i (Algorithm 1, line 21)
    SCRATCH = {
        "lam": ti.f32,  # lambda_i, eq. 11
        "omega": vec3,  # the vorticity omega_i, eq. 15
    }


@ti.kernel
def predict(
    x: nd_vec3,
    v: nd_vec3,
    x0: nd_vec3,
    flags: nd_i32,
    free_head: nd_i32,
    dt: ti.f32,
    gravity: nd_vec3,
    v_max: ti.f32,
    b_params: nd_f32,
    wall_table: nd_vec2,
    h: ti.f32,
    sdf: nd_f32_3d,
    o_capsules: nd_capsule,
    o_count: ti.i32,
    o_elapsed: ti.f32,
):
    """Apply gravity and predict x* = x + dt v (Algorithm 1, lines 2-3), out of the solids."""
    b = ti.static(BoundaryArgs(b_params, wall_table, h, sdf))
    o = ti.static(ObstacleArgs(o_capsules, o_count, o_elapsed))
    for i in range(in_use(free_head, x)):
        if flags[i] & ACTIVE:
            x0[i] = x[i]
            x[i], v[i] = move(x[i], v[i] + dt * gravity[0], dt, v_max, b, o)


class _Lambda(NamedTuple):
    v: object
    mass: object
    rho0: object
    h: object
    own: object = None  # v_i (neighbors.with_own), read by the first iteration's pass
    read_own = staticmethod(read_velocity)


@ti.func
def _lambda_task(i, j, r: vec3, ret: ti.template(), c: ti.template()):
    """One neighbour's share of rho_i and of the gradient sums of eq. 11 (terms.density_grad_pair)."""
    w, grad_w = cubic_W_gradW(r, c.h)
    ret += density_grad_pair(w, grad_w, c.mass)


@ti.func
def _lambda_vorticity_xsph_task(i, j, r: vec3, ret: ti.template(), c: ti.template()):
    """_lambda_task's sums, with omega (eq. 15, grad_pj W_ij = -grad_pi W_ij) in [5:8] and the
    XSPH sum (eq. 17) in [8:11], both with the volume m / rho0."""
    w, grad_w = cubic_W_gradW(r, c.h)
    d = density_grad_pair(w, grad_w, c.mass)
    v_ij = c.v[j] - c.own.v
    volume = c.mass / c.rho0
    omega = volume * v_ij.cross(-grad_w)
    smooth = volume * w * v_ij
    ret += ti.Vector([d[0], d[1], d[2], d[3], d[4], omega.x, omega.y, omega.z, smooth.x, smooth.y, smooth.z])


@ti.func
def _finish_lambda(i, sums, first: ti.template(), x: ti.template(), v: ti.template(), rho: ti.template(),
                   lam: ti.template(), wall: ti.template(), omega: ti.template(), dv: ti.template(),
                   b: ti.template(), rho0, relaxation, c_xsph, c_wall):
    """lambda_i, eq. 11, from the fluid's sums, with the boundary's share of rho_i and of
    grad_pi C_i; the solids' density map at x*_i, which the delta pass reads at the same
    positions. The first iteration's also writes omega_i (eq. 15) and the smoothing's velocity
    change dv_i: XSPH (eq. 17) plus the solid's, a neighbour at rest (terms.xsph_boundary)."""
    rho_i, wall_i = with_solids(sums[0], x[i], b, rho0)
    wall[i] = wall_i
    grad_i = vec3(sums[1], sums[2], sums[3]) / rho0 + wall_i.xyz  # grad_pi C_i
    denom = grad_i.norm_sqr() + sums[4] / (rho0 * rho0)
    C = ti.max(rho_i / rho0 - 1.0, 0.0)
    rho[i] = rho_i
    lam[i] = -C / (denom + relaxation)
    if ti.static(first):
        omega[i] = vec3(sums[5], sums[6], sums[7])
        smooth = c_xsph * vec3(sums[8], sums[9], sums[10])
        dv[i] = smooth + c_wall * xsph_boundary(wall_i.w, v[i] + smooth)


def _lambda_kernel(first: bool):
    """The lambda pass. The first iteration's also sums vorticity and XSPH (see PBF.substep)."""
    task = _lambda_vorticity_xsph_task if first else _lambda_task
    n_sums = 11 if first else 5  # rho, sum grad W (3), sum |grad W|^2; the first's omega (3) and XSPH (3) too

    @ti.kernel
    def constraint_lambda(
        x: nd_vec3, v: nd_vec3, flags: nd_i32, free_head: nd_i32, rho: nd_f32, lam: nd_f32, wall: nd_vec4,
        omega: nd_vec3, dv: nd_vec3,
        cell_start: nd_i32, g_origin: nd_vec3, g_shape: nd_ivec3, h: ti.f32, g_list: nd_i32, g_count: nd_i32,
        b_params: nd_f32, wall_table: nd_vec2, sdf: nd_f32_3d,
        mass: ti.f32, rho0: ti.f32, relaxation: ti.f32, c_xsph: ti.f32, c_wall: ti.f32,
    ):
        g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h, g_list, g_count))
        b = ti.static(BoundaryArgs(b_params, wall_table, h, sdf))
        c = ti.static(_Lambda(v, mass, rho0, h))
        for i in range(in_use(free_head, x)):
            if flags[i] & ACTIVE:
                sums = ti.Vector([0.0] * n_sums)  # the sums include j = i
                for_each_neighbor(i, x[i], g, task, sums, c)
                _finish_lambda(i, sums, first, x, v, rho, lam, wall, omega, dv, b, rho0, relaxation, c_xsph, c_wall)

    return constraint_lambda


_OwnDelta = ti.types.struct(lam=ti.f32, omega_norm=ti.f32)


@ti.func
def _read_delta(i, c: ti.template()):
    return _OwnDelta(lam=c.lam[i], omega_norm=c.omega[i].norm())


class _Delta(NamedTuple):
    lam: object
    omega: object
    mass: object
    h: object
    w_dq: object  # W(|dq|)
    scorr_scale: object  # k / D0, see PBF.__init__
    own: object = None  # lambda_i and |omega_i| (neighbors.with_own)
    read_own = staticmethod(_read_delta)


@ti.func
def _delta_term(i, j, w: ti.f32, grad_w: vec3, c: ti.template()) -> vec3:
    """One neighbour's share of eq. 12's sum, with s_corr (eq. 13)."""
    s_corr = -c.scorr_scale * (w / c.w_dq) ** SCORR_N
    return c.mass * (c.own.lam + c.lam[j] + s_corr) * grad_w


@ti.func
def _delta_task(i, j, r: vec3, ret: ti.template(), c: ti.template()):
    w, grad_w = cubic_W_gradW(r, c.h)
    ret += _delta_term(i, j, w, grad_w, c)


@ti.func
def _delta_eta_task(i, j, r: vec3, ret: ti.template(), c: ti.template()):
    """eq. 12's sum in [0:3], and eta = grad |omega| (eq. 16) times rho0 in [3:6]: only its
    direction N is used."""
    w, grad_w = cubic_W_gradW(r, c.h)
    d = _delta_term(i, j, w, grad_w, c)
    e = c.mass * (c.omega[j].norm() - c.own.omega_norm) * grad_w
    ret += ti.Vector([d.x, d.y, d.z, e.x, e.y, e.z])


@ti.func
def _position_delta(i, sums, first: ti.template(), lam: ti.template(), wall: ti.template(), omega: ti.template(),
                    dv: ti.template(), rho0, dt, epsilon) -> vec3:
    """dp_i, eq. 12 with s_corr (eq. 14), from the fluid's sums, plus lambda_i times the
    boundary's grad_pi C_i. The first iteration's adds dt dv_i and dt^2 f_i, f_i = epsilon
    (N x omega_i) (eq. 16)."""
    dp_i = vec3(sums[0], sums[1], sums[2]) / rho0 + lam[i] * wall[i].xyz
    if ti.static(first):
        eta = vec3(sums[3], sums[4], sums[5])
        if eta.norm() > 1e-9:
            dp_i += dt * dt * epsilon * eta.normalized().cross(omega[i])
        dp_i += dt * dv[i]
    return dp_i


def _delta_kernel(first: bool):
    """The delta pass, which moves each particle. The first iteration's also moves x*_i by the
    smoothing and the vorticity confinement (see PBF.substep)."""
    task = _delta_eta_task if first else _delta_task
    n_sums = 6 if first else 3

    @ti.kernel
    def position_delta(
        x: nd_vec3, v: nd_vec3, flags: nd_i32, free_head: nd_i32, lam: nd_f32, wall: nd_vec4, omega: nd_vec3,
        dv: nd_vec3, x_out: nd_vec3,
        cell_start: nd_i32, g_origin: nd_vec3, g_shape: nd_ivec3, h: ti.f32, g_list: nd_i32, g_count: nd_i32,
        mass: ti.f32, rho0: ti.f32, w_dq: ti.f32, scorr_scale: ti.f32, dt: ti.f32, epsilon: ti.f32,
        b_params: nd_f32, wall_table: nd_vec2, sdf: nd_f32_3d,
        o_capsules: nd_capsule, o_count: ti.i32, o_elapsed: ti.f32,
    ):
        """dp_i, then x*_i + dp_i and the collision response (Algorithm 1, lines 13-15) into
        x_out, as the neighbours still read x; v_i, read by i alone, in place. One launch where
        two were: a launch costs about 55 us on the 2-core CPU, tens on a GPU's stream."""
        g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h, g_list, g_count))
        c = ti.static(_Delta(lam, omega, mass, h, w_dq, scorr_scale))
        b = ti.static(BoundaryArgs(b_params, wall_table, h, sdf))
        o = ti.static(ObstacleArgs(o_capsules, o_count, o_elapsed))
        for i in range(in_use(free_head, x)):
            xi = x[i]
            if flags[i] & ACTIVE:
                sums = ti.Vector([0.0] * n_sums)
                for_each_neighbor(i, xi, g, task, sums, c)
                dp_i = _position_delta(i, sums, first, lam, wall, omega, dv, rho0, dt, epsilon)
                xi, v[i] = collide(xi + dp_i, v[i], b, o)
            x_out[i] = xi

    return position_delta


constraint_lambda = _lambda_kernel(first=False)
constraint_lambda_first = _lambda_kernel(first=True)
position_delta = _delta_kernel(first=False)
position_delta_first = _delta_kernel(first=True)


@ti.kernel
def update_velocity(x: nd_vec3, x0: nd_vec3, v: nd_vec3, flags: nd_i32, free_head: nd_i32, inv_dt: ti.f32,
    v_max: ti.f32):
    """v_i = (x*_i - x_i) / dt (Algorithm 1, line 21)."""
    for i in range(in_use(free_head, x)):
        if flags[i] & ACTIVE:
            v[i] = clamp_speed((x[i] - x0[i]) * inv_dt, v_max)


class PBF:
    """One substep of Algorithm 1 of the paper, on the shared state, grid and boundary, and its own
    fields (PBFData)."""

    name = "pbf"
    Data = PBFData
    # Stable at frame-sized steps: when the CFL condition asks for more than max_substeps, the
    # substeps stay frame_dt / max_substeps long and the speed limit v_max(dt) bounds each move;
    # the water never runs slower than the clock (see Solver.plan)
    keeps_frame_time = True

    def __init__(self, settings, fluid, state):
        self.data = PBFData(state)
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
        st, bnd, obs, d = s.state, s.boundary, s.obstacles, self.data
        s.dispatch(predict, st.x, st.v, d.x0, st.flags, st.free_head, dt, s.gravity, s.v_max(dt), *bnd.args(),
            *obs.args())
        s.grid.build(st, s.dispatch)
        for k in range(self.iterations):
            self._iteration(s, dt, first=k == 0)
        s.dispatch(update_velocity, st.x, d.x0, st.v, st.flags, st.free_head, 1.0 / dt, s.v_max(dt))

    def _iteration(self, s, dt: float, first: bool) -> None:
        """One Jacobi iteration: the lambda pass, then the delta pass and the move."""
        st, bnd, obs, d = s.state, s.boundary, s.obstacles, self.data
        g_args = s.grid.args()
        s.dispatch(
            constraint_lambda_first if first else constraint_lambda,
            st.x, st.v, st.flags, st.free_head, st.rho, d.lam, st.wall, d.omega, st.dv, *g_args,
            *bnd.args_without_h(), s.mass,
            s.rho0, self.relaxation, self.c_xsph, s.wall_xsph(dt),
        )
        s.dispatch(  # dv in (the smoothing, read by each particle for itself); the moved x* into the back buffer
            position_delta_first if first else position_delta,
            st.x, st.v, st.flags, st.free_head, d.lam, st.wall, d.omega, st.dv, st.back.x, *g_args, s.mass,
            s.rho0, self.w_dq, self.scorr_scale, dt, self.vorticity_epsilon, *bnd.args_without_h(), *obs.args(),
        )
        st.swap_positions_with_back()

    def pressure(self, s):
        raise NotImplementedError("PBF solves positions, not pressure: use DFSPH or WCSPH for pressure")
