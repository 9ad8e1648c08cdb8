"""Divergence-Free SPH: Bender & Koschier 2015 (SCA), 2017 ("Divergence-free SPH for
incompressible and viscous fluids", IEEE TVCG 23(3)).

Two pressure solves per step keep the fluid incompressible: one drives the density's rate of
change to zero (divergence-free velocity), one drives the predicted density to rest density.
Each is a Jacobi iteration on the pressure parameter k_i = p_i / rho_i^2, written here with
the DFSPH factor alpha_i = 1 / (|sum_j m_j grad W_ij|^2 + sum_j |m_j grad W_ij|^2)  (2017, eq. 9):

    divergence:  (D rho / Dt)_i = sum_j m_j (v_i - v_j) . grad W_ij                 (eq. 5)
                 k_i = (D rho / Dt)_i alpha_i / dt
    density:     rho*_i = rho_i + dt sum_j m_j (v_i - v_j) . grad W_ij             (eq. 10)
                 k_i = (rho*_i - rho0) alpha_i / dt^2
    both:        v_i -= dt (sum_j m_j (k_i + k_j) grad W_ij + k_i grad rho_b)     (eq. 11, 12)

The solid boundary adds rho_b = rho0 Gamma(d) to rho_i and its gradient to the sums (density
maps, see boundary.py). Its pressure term takes k_i once, as SPlisHSPlasH's DFSPH does, which
keeps alpha the exact diagonal d rho*_i / d k_i; the price is that the layer against a wall
carries about 1.5x the hydrostatic k (measured), so pressure is read away from the walls.

Warm start (2017, sec. 4.3): each solve starts from half the last substep's pressure where the
fluid is still compressed, as SPlisHSPlasH does; it cuts the density solve to a few iterations.
The divergence solve's test for compression rides on the factor's neighbour pass; the density
solve's on the divergence solve's iterations (pressure_parameter: its last measured the rate the
density solve starts from), and its first push on the non-pressure pass (non_pressure): no
solve's warm start is a neighbour pass of its own but the divergence solve's.

No host round trip inside a substep: each iteration's mean error is summed on the device, and
the iteration decides there whether the solve has converged. The host launches as many
iterations as the most any substep of the previous frame needed, plus two (twice as many if one
ran out), and later ones return at once; the counts are read once per frame.
"""

from typing import NamedTuple

import taichi as ti

from waterrock.solver.boundary import BoundaryArgs
from waterrock.solver.kernels import cubic_gradW, cubic_W_gradW
from waterrock.solver.neighbors import GridArgs, for_each_neighbor
from waterrock.solver.state import ACTIVE, MethodData, in_use
from waterrock.solver.terms import (
    density_grad_pair,
    read_velocity,
    read_velocity_pressure,
    with_solids,
    xsph_boundary,
    xsph_pair,
)
from waterrock.solver.types import nd_f32, nd_f32_3d, nd_i32, nd_ivec3, nd_vec2, nd_vec3, nd_vec4, vec2, vec3

# the device-side state of each solve: converged, and iterations applied, in this substep; then,
# summed over the frame until the host reads them: the most iterations a substep applied, the
# iterations in all, and how many substeps ran out of launched iterations before converging
DONE, ITERS, MOST, TOTAL, MISSED = 0, 1, 2, 3, 4
DIVERGENCE, DENSITY = 0, 1
WARM_START = 0.5  # the share of the last substep's pressure a solve starts from
NO_CAP = 3.0e38


class DFSPHData(MethodData):
    """DFSPH's own per-particle fields (state.MethodData), as SPlisHSPlasH's SimulationDataDFSPH."""

    # the pressure parameters each solve applied, [divergence, density]: k dt and k, kept as the
    # next substep's warm start (warm_start_k)
    CARRIED = {"kappa": vec2}
    SCRATCH = {
        "alpha": ti.f32,  # the DFSPH factor alpha_i, eq. 9
        "k": ti.f32,  # the pressure parameter k_i = p_i / rho_i^2 of the solve's iteration
        "k_warm": ti.f32,  # the density solve's first k_i, found by the divergence solve (pressure_parameter)
    }


class _Rate(NamedTuple):
    v: object
    mass: object
    h: object
    own: object = None  # v_i (neighbors.with_own)
    read_own = staticmethod(read_velocity)


@ti.func
def rate_pair(i, j, grad_w_ij: vec3, c: ti.template()) -> ti.f32:
    """One neighbour's share of (D rho / Dt)_i = sum_j m_j (v_i - v_j) . grad W_ij (eq. 5)."""
    return c.mass * (c.own.v - c.v[j]).dot(grad_w_ij)


@ti.func
def _factor_task(i, j, r: vec3, ret: ti.template(), c: ti.template()):
    """ret: rho_i, sum_j m_j grad W_ij (3), sum_j |m_j grad W_ij|^2, and (D rho / Dt)_i."""
    w, grad_w = cubic_W_gradW(r, c.h)
    d = density_grad_pair(w, grad_w, c.mass)
    ret += ti.Vector([d[0], d[1], d[2], d[3], d[4], rate_pair(i, j, grad_w, c)])


@ti.func
def density_warm_start(rho_i, rate: ti.f32, grad_gamma: vec3, kappa_i: ti.f32, dt: ti.f32, gravity: vec3, rho0):
    """The density solve's first k_i (warm_start_k), from the predicted density rho_i + dt
    (D rho / Dt)_i after the non-pressure forces, taken from the divergence solve's rate: gravity,
    the same for all, drops out of v_i - v_j but not out of the still solid's term (it presses
    the water into the floor); only XSPH's small smoothing is left out of a test of sign."""
    rate_after = rate + rho0 * dt * gravity.dot(grad_gamma)
    return warm_start_k(rho_i + dt * rate_after - rho0, kappa_i, 1.0, NO_CAP)


@ti.func
def warm_start_k(e: ti.f32, kappa_i: ti.f32, scale: ti.f32, k_max: ti.f32) -> ti.f32:
    """A solve's first k_i (Bender & Koschier 2017, sec. 4.3): half the last substep's, as
    SPlisHSPlasH does, where the fluid is still compressed (e > 0), capped at k_max.
    kappa is stored as k * scale (scale = dt for the divergence solve, whose k goes as 1/dt, and
    1 for the density solve, whose k = p / rho^2), so it survives a change of step. The
    divergence solve's cap is the hydrostatic k of the domain's size: a visitor's impact is a
    spike of divergence pressure that moved on with the visitor, and restarting from half of it
    flings the water it left behind (measured: 19 m/s splashes from a 5 m/s sphere). The density
    solve has no cap (NO_CAP)."""
    k = 0.0
    if e > 0.0:
        k = ti.min(WARM_START * kappa_i / scale, k_max)
    return k


@ti.kernel
def density_and_factor(
    x: nd_vec3, v: nd_vec3, flags: nd_i32, free_head: nd_i32, rho: nd_f32, alpha: nd_f32, wall: nd_vec4,
    k: nd_f32, kappa: nd_vec2, solve: nd_i32, dt: ti.f32, k_max: ti.f32,
    cell_start: nd_i32, g_origin: nd_vec3, g_shape: nd_ivec3, h: ti.f32, g_list: nd_i32, g_count: nd_i32,
    b_params: nd_f32, wall_table: nd_vec2, sdf: nd_f32_3d,
    mass: ti.f32, rho0: ti.f32,
):
    """rho_i and the DFSPH factor alpha_i (2017, eq. 9), with the boundary's gradient; the
    solids' density map at x_i, which the substep's later passes read (positions are fixed until
    the advection); and, from the density rate of the same pass, the divergence solve's warm
    start (see warm_start_k)."""
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h, g_list, g_count))
    b = ti.static(BoundaryArgs(b_params, wall_table, h, sdf))
    c = ti.static(_Rate(v, mass, h))
    solve[DONE] = 0
    solve[ITERS] = 0
    for i in range(in_use(free_head, x)):
        ki = 0.0
        if flags[i] & ACTIVE:
            sums = ti.Vector([0.0] * 6)  # the sums include j = i
            for_each_neighbor(i, x[i], g, _factor_task, sums, c)
            rho_i, wall_i = with_solids(sums[0], x[i], b, rho0)
            grad_b = wall_i.xyz
            sum_grad = vec3(sums[1], sums[2], sums[3])
            denom = (sum_grad + rho0 * grad_b).norm_sqr() + sums[4]
            rho[i] = rho_i
            wall[i] = wall_i
            alpha[i] = 1.0 / denom if denom > 1e-6 else 0.0
            rate = sums[5] + rho0 * v[i].dot(grad_b)
            ki = warm_start_k(rate, kappa[i][DIVERGENCE], dt, k_max)
        k[i] = ki
        kappa[i][DIVERGENCE] = ki * dt


@ti.func
def _rate_task(i, j, r: vec3, ret: ti.template(), c: ti.template()):
    ret += rate_pair(i, j, cubic_gradW(r, c.h), c)


@ti.func
def density_rate(i, xi: vec3, g: ti.template(), grad_gamma: vec3, c: ti.template(), rho0: ti.f32):
    """(D rho / Dt)_i, eq. 5, the solid at rest."""
    acc = 0.0
    for_each_neighbor(i, xi, g, _rate_task, acc, c)
    return acc + rho0 * c.v[i].dot(grad_gamma)


@ti.kernel
def pressure_parameter(
    x: nd_vec3, v: nd_vec3, flags: nd_i32, free_head: nd_i32, wall: nd_vec4, rho: nd_f32, alpha: nd_f32, k: nd_f32,
    k_warm: nd_f32, kappa: nd_vec2, solve: nd_i32, err: nd_f32, which: ti.i32, dt: ti.f32, gravity: nd_vec3,
    cell_start: nd_i32, g_origin: nd_vec3, g_shape: nd_ivec3, h: ti.f32, g_list: nd_i32, g_count: nd_i32,
    mass: ti.f32, rho0: ti.f32,
):
    """k_i of one Jacobi iteration and the solve's summed error (relative to rho0). The divergence
    solve's also finds the density solve's warm start from the same rate (see density_warm_start):
    the last iteration that runs is the one that measured the solve's error, on the velocities the
    solve leaves."""
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h, g_list, g_count))
    c = ti.static(_Rate(v, mass, h))
    total = 0.0  # a kernel-local sum: Taichi reduces it per thread (into err[0] at once, the
    # thread-contended atomic costs 1.3 ms per 16k particles on 2 CPU cores)
    for i in range(in_use(free_head, x)):
        if solve[DONE] == 0 and flags[i] & ACTIVE:
            rate = density_rate(i, x[i], g, wall[i].xyz, c, rho0)
            if which == DIVERGENCE:
                # only compression counts: an expanding free surface is no error
                e = ti.max(rate, 0.0)
                k[i] = e * alpha[i] / dt
                total += e * dt / rho0  # the density change the substep would make
                k_warm[i] = density_warm_start(rho[i], rate, wall[i].xyz, kappa[i][DENSITY], dt, gravity[0], rho0)
            else:
                e = ti.max(rho[i] + dt * rate - rho0, 0.0)
                k[i] = e * alpha[i] / (dt * dt)
                total += e / rho0
    err[0] = total


_OwnK = ti.types.struct(k=ti.f32)


@ti.func
def _read_k(i, c: ti.template()):
    return _OwnK(k=c.k[i])


class _Pressure(NamedTuple):
    k: object
    mass: object
    h: object
    own: object = None  # k_i (neighbors.with_own)
    read_own = staticmethod(_read_k)


@ti.func
def _pressure_task(i, j, r: vec3, ret: ti.template(), c: ti.template()):
    ret += c.mass * (c.own.k + c.k[j]) * cubic_gradW(r, c.h)


@ti.func
def pressure_acceleration(i, xi: vec3, k: ti.template(), g: ti.template(), grad_gamma: vec3, mass, h, rho0):
    """-a_i^p = sum_j m_j (k_i + k_j) grad W_ij + k_i grad rho_b  (eq. 11, 12; the solid's term once)."""
    c = ti.static(_Pressure(k, mass, h))
    acc = vec3(0.0)
    for_each_neighbor(i, xi, g, _pressure_task, acc, c)
    return acc + k[i] * rho0 * grad_gamma


@ti.kernel
def apply_pressure(
    x: nd_vec3, v: nd_vec3, flags: nd_i32, free_head: nd_i32, wall: nd_vec4, k: nd_f32, kappa: nd_vec2,
    solve: nd_i32, err: nd_f32, which: ti.i32, tolerance: ti.f32, dt: ti.f32, scale: ti.f32,
    cell_start: nd_i32, g_origin: nd_vec3, g_shape: nd_ivec3, h: ti.f32, g_list: nd_i32, g_count: nd_i32,
    mass: ti.f32, rho0: ti.f32,
):
    """Decide on the device whether the solve converged; if not, v_i -= dt a_i^p (eq. 11/12)."""
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h, g_list, g_count))
    if solve[DONE] == 0:
        mean_err = err[0] / ti.max(ti.cast(free_head[0], ti.f32), 1.0)
        if mean_err <= tolerance:
            solve[DONE] = 1
    for i in range(in_use(free_head, x)):
        if solve[DONE] == 0 and flags[i] & ACTIVE:
            v[i] -= dt * pressure_acceleration(i, x[i], k, g, wall[i].xyz, mass, h, rho0)
            kappa[i][which] += k[i] * scale
    if solve[DONE] == 0:
        solve[ITERS] += 1


@ti.kernel
def close_solve(solve: nd_i32):
    """Fold a substep's solve into the frame's counts, which the host reads once per frame."""
    solve[MOST] = ti.max(solve[MOST], solve[ITERS])
    solve[TOTAL] += solve[ITERS]
    if solve[DONE] == 0:
        solve[MISSED] += 1


@ti.kernel
def apply_warm_start(
    x: nd_vec3, v: nd_vec3, flags: nd_i32, free_head: nd_i32, wall: nd_vec4, k: nd_f32, dt: ti.f32,
    cell_start: nd_i32, g_origin: nd_vec3, g_shape: nd_ivec3, h: ti.f32, g_list: nd_i32, g_count: nd_i32,
    mass: ti.f32, rho0: ti.f32,
):
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h, g_list, g_count))
    for i in range(in_use(free_head, x)):
        if flags[i] & ACTIVE:
            v[i] -= dt * pressure_acceleration(i, x[i], k, g, wall[i].xyz, mass, h, rho0)


class _Smoothing(NamedTuple):
    """XSPH's arguments (terms.xsph_pair) and the density solve's warm start k."""

    v: object
    rho: object
    k: object
    mass: object
    h: object
    own: object = None  # v_i and k_i (neighbors.with_own)
    read_own = staticmethod(read_velocity_pressure)


@ti.func
def _xsph_warm_task(i, j, r: vec3, ret: ti.template(), c: ti.template()):
    """ret[0:3]: XSPH's sum over j; ret[3:6]: sum_j m_j (k_i + k_j) grad W_ij (eq. 11)."""
    w, grad_w = cubic_W_gradW(r, c.h)
    s = xsph_pair(i, j, w, c)
    p = c.mass * (c.own.k + c.k[j]) * grad_w
    ret += ti.Vector([s.x, s.y, s.z, p.x, p.y, p.z])


@ti.kernel
def non_pressure(
    x: nd_vec3, v: nd_vec3, flags: nd_i32, free_head: nd_i32, wall: nd_vec4, rho: nd_f32, v_out: nd_vec3,
    k_warm: nd_f32, kappa: nd_vec2, solve: nd_i32,
    cell_start: nd_i32, g_origin: nd_vec3, g_shape: nd_ivec3, h: ti.f32, g_list: nd_i32, g_count: nd_i32,
    mass: ti.f32, rho0: ti.f32, dt: ti.f32, gravity: nd_vec3, c_xsph: ti.f32, c_wall: ti.f32,
):
    """v* = v + dt g, smoothed by XSPH viscosity, with the solid as a neighbour at rest, and the
    density solve's warm start applied in the same pass: v* -= dt a^p with the k_warm that the
    divergence solve found (density_warm_start; 2017, sec. 4.3). a^p (eq. 11, 12) depends on the
    positions and k alone, not on v, so the sum is the one a pass of its own would take after
    this one (measured at 16k on 2 cores: that pass took 0.9 ms of a 13 ms substep)."""
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h, g_list, g_count))
    c = ti.static(_Smoothing(v, rho, k_warm, mass, h))
    solve[DONE] = 0
    solve[ITERS] = 0
    for i in range(in_use(free_head, x)):
        vi = v[i]
        ki = 0.0
        if flags[i] & ACTIVE:
            sums = ti.Vector([0.0] * 6)
            for_each_neighbor(i, x[i], g, _xsph_warm_task, sums, c)
            ki = k_warm[i]
            a_p = vec3(sums[3], sums[4], sums[5]) + ki * rho0 * wall[i].xyz
            vi += dt * gravity[0] + c_xsph * vec3(sums[0], sums[1], sums[2]) + c_wall * xsph_boundary(wall[i].w, vi)
            vi -= dt * a_p
        v_out[i] = vi
        kappa[i][DENSITY] = ki


class DFSPH:
    """One DFSPH step (2017, Algorithm 1, reordered to start after the neighbour search), on the
    shared state, grid and boundary, and its own fields (DFSPHData)."""

    name = "dfsph"
    Data = DFSPHData

    def __init__(self, settings, fluid, state):
        self.data = DFSPHData(state)
        self.density_tolerance = settings.density_tolerance
        self.divergence_tolerance = settings.divergence_tolerance
        self.max_iterations = settings.max_iterations
        self.c_xsph = fluid.viscosity
        self.solve = [ti.ndarray(ti.i32, 5), ti.ndarray(ti.i32, 5)]
        for solve in self.solve:
            solve.fill(0)
        self.err = ti.ndarray(ti.f32, 1)
        # iterations launched per solve: the most a substep of the last frame needed, plus a margin
        self.launch = [min(8, self.max_iterations)] * 2
        self.last_dt = 1.0

    def _solve(self, s, which: int, tolerance: float, dt: float, g_args) -> None:
        """The Jacobi iterations of one solve, after its warm start."""
        st, d = s.state, self.data
        scale = dt if which == DIVERGENCE else 1.0
        if which == DIVERGENCE:  # the density solve's warm start rides on non_pressure
            s.dispatch(apply_warm_start, st.x, st.v, st.flags, st.free_head, st.wall, d.k, dt, *g_args, s.mass, s.rho0)
        s.flush()  # an iteration is one graph, whatever the number launched
        for _ in range(self.launch[which]):
            s.dispatch(
                pressure_parameter, st.x, st.v, st.flags, st.free_head, st.wall, st.rho, d.alpha, d.k,
                d.k_warm, d.kappa, self.solve[which], self.err, which, dt, s.gravity, *g_args, s.mass, s.rho0,
            )
            s.dispatch(
                apply_pressure, st.x, st.v, st.flags, st.free_head, st.wall, d.k, d.kappa, self.solve[which],
                self.err, which, tolerance, dt, scale, *g_args, s.mass, s.rho0,
            )
            s.flush()
        s.dispatch(close_solve, self.solve[which])

    def substep(self, s, dt: float) -> None:
        self.last_dt = dt
        st, grid, d = s.state, s.grid, self.data
        b_args = s.boundary.args_without_h()
        grid.build(st, s.dispatch)
        g_args = grid.args()
        s.dispatch(
            density_and_factor, st.x, st.v, st.flags, st.free_head, st.rho, d.alpha, st.wall, d.k, d.kappa,
            self.solve[DIVERGENCE], dt, s.k_hydrostatic, *g_args, *b_args, s.mass, s.rho0,
        )
        self._solve(s, DIVERGENCE, self.divergence_tolerance, dt, g_args)
        s.dispatch(
            non_pressure, st.x, st.v, st.flags, st.free_head, st.wall, st.rho, st.dv, d.k_warm, d.kappa,
            self.solve[DENSITY], *g_args, s.mass, s.rho0, dt, s.gravity, self.c_xsph, s.wall_xsph(dt),
        )
        st.swap_velocity_scratch()
        self._solve(s, DENSITY, self.density_tolerance, dt, g_args)
        s.advect(dt)

    def end_frame(self, substeps: int) -> dict:
        """Read the frame's iteration counts (one host read per solve) and size the next frame's
        launches: the most any substep needed plus two, twice as many where one ran out."""
        stats = {}
        for which, name in ((DIVERGENCE, "divergence"), (DENSITY, "density")):
            counts = self.solve[which].to_numpy()
            most, missed = int(counts[MOST]), int(counts[MISSED])
            if missed:
                self.launch[which] = min(self.max_iterations, 2 * self.launch[which])
            else:
                self.launch[which] = min(self.max_iterations, most + 2)
            self.solve[which].fill(0)
            stats[f"{name}_iterations"] = float(counts[TOTAL]) / max(substeps, 1)
            stats[f"{name}_iterations_max"] = most
            stats[f"{name}_converged"] = missed == 0
        return stats

    def pressure(self, s):
        """p_i = (k_i of the density solve + k_i of the divergence solve) rho_i^2, as of the last
        substep: both solves push with pressure, and in a column at rest the divergence solve
        carries about a tenth of rho g h (measured: the density solve's alone reads 10 % low)."""
        rho = s.state.rho.to_numpy()
        kappa = self.data.kappa.to_numpy()
        return (kappa[:, DENSITY] + kappa[:, DIVERGENCE] / self.last_dt) * rho * rho
