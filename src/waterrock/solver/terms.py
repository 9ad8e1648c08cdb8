"""SPH terms shared by the pressure solvers, each a task for the one neighbour loop.

    density        rho_i = sum_j m_j W_ij + rho_b(x_i)                      (Monaghan 1992, eq. 2.8)
    XSPH           v_i <- v_i + c sum_j (m_j / rho_j) (v_j - v_i) W_ij       (Schechter & Bridson 2012, eq. 6;
                                                                           Macklin & Mueller 2013, eq. 17)
    grad sums      sum_j m_j grad W_ij and sum_j |m_j grad W_ij|^2, summed with the density
                   (density_grad_pair): the denominators of PBF's
                   lambda (Macklin & Mueller 2013, eq. 11) and of DFSPH's factor (Bender & Koschier
                   2017, eq. 9)
"""

from typing import NamedTuple

import taichi as ti

from waterrock.solver.boundary import BoundaryArgs, boundary_density, collide_solids, contact, friction
from waterrock.solver.kernels import cubic_W
from waterrock.solver.neighbors import GridArgs, for_each_neighbor
from waterrock.solver.obstacles import ObstacleArgs, collide_obstacles
from waterrock.solver.state import ACTIVE, in_use
from waterrock.solver.types import nd_capsule, nd_f32, nd_f32_3d, nd_i32, nd_ivec3, nd_vec2, nd_vec3, vec3, vec4


class Fluid(NamedTuple):
    mass: object
    rho0: object
    h: object


@ti.func
def density_task(i, j, r: vec3, ret: ti.template(), f: ti.template()):
    """One neighbour's share of rho_i: m_j W_ij."""
    ret += f.mass * cubic_W(r.norm(), f.h)


@ti.func
def with_solids(rho_fluid, xi: vec3, b: ti.template(), rho0):
    """rho_i from the fluid's sum and the solids' density map at x_i, and that map,
    (grad Gamma, Gamma) (see ParticleState.wall)."""
    gamma_b, grad_b = boundary_density(xi, b)
    return rho_fluid + rho0 * gamma_b, vec4(grad_b, gamma_b)


@ti.func
def density(i, xi: vec3, g: ti.template(), b: ti.template(), f: ti.template()):
    """rho_i, and the solids' density map at x_i (with_solids)."""
    rho = 0.0  # the sum includes j = i: m_i W(0)
    for_each_neighbor(i, xi, g, density_task, rho, f)
    return with_solids(rho, xi, b, f.rho0)


@ti.func
def density_grad_pair(w_ij: ti.f32, grad_w_ij: vec3, mass: ti.f32):
    """One neighbour's share of (rho_i, sum_j m_j grad W_ij (3), sum_j |m_j grad W_ij|^2)."""
    gw = mass * grad_w_ij
    return ti.Vector([mass * w_ij, gw.x, gw.y, gw.z, gw.norm_sqr()])


@ti.func
def xsph_boundary(gamma_b: ti.f32, vi: vec3) -> vec3:
    """XSPH with the solid as the neighbour, at rest: sum_b V_b (0 - v_i) W_ib = -Gamma(d) v_i,
    since the boundary's volume-weighted kernel sum is the density map's Gamma (boundary.py)."""
    return -gamma_b * vi


OwnVelocity = ti.types.struct(v=vec3)  # what a term reads of particle i: v_i (neighbors.with_own)


@ti.func
def read_velocity(i, c: ti.template()):
    return OwnVelocity(v=c.v[i])


OwnVelocityPressure = ti.types.struct(v=vec3, k=ti.f32)  # v_i and k_i = p_i / rho_i^2


@ti.func
def read_velocity_pressure(i, c: ti.template()):
    return OwnVelocityPressure(v=c.v[i], k=c.k[i])


@ti.func
def xsph_term(volume_j, v_ji: vec3, w_ij) -> vec3:
    """One neighbour's XSPH term, V_j (v_j - v_i) W_ij with the volume V_j = m_j / rho_j."""
    return volume_j * v_ji * w_ij


@ti.func
def xsph_pair(i, j, w_ij, c: ti.template()) -> vec3:
    """xsph_term with V_j from the density; c holds v, rho and mass, and v_i as ``own.v``. Every
    solver folds the smoothing into another pass over the same neighbours."""
    return xsph_term(c.mass / c.rho[j], c.v[j] - c.own.v, w_ij)


# --- kernels shared by the SPH solvers -----------------------------------------------------------


@ti.func
def clamp_speed(v: vec3, v_max: ti.f32) -> vec3:
    s = v.norm()
    if s > v_max:
        v *= v_max / s
    return v


@ti.func
def collide(p: vec3, v: vec3, b: ti.template(), o: ti.template()):
    """The visitors, then the solids, push p out and take from v what goes into them."""
    p, v = collide_obstacles(p, v, contact(b), friction(b), o)
    return collide_solids(p, v, b)


@ti.func
def move(p: vec3, v: vec3, dt: ti.f32, v_max: ti.f32, b: ti.template(), o: ti.template()):
    """Symplectic Euler's position update at the substep's speed limit, then collision."""
    v = clamp_speed(v, v_max)
    return collide(p + dt * v, v, b, o)


@ti.kernel
def advect(
    x: nd_vec3, v: nd_vec3, flags: nd_i32, free_head: nd_i32, dt: ti.f32, v_max: ti.f32,
    b_params: nd_f32, wall_table: nd_vec2, h: ti.f32, sdf: nd_f32_3d,
    o_capsules: nd_capsule, o_count: ti.i32, o_elapsed: ti.f32,
):
    """Symplectic Euler's position update, then the solids and the obstacles push back."""
    b = ti.static(BoundaryArgs(b_params, wall_table, h, sdf))
    o = ti.static(ObstacleArgs(o_capsules, o_count, o_elapsed))
    for i in range(in_use(free_head, x)):
        if flags[i] & ACTIVE:
            x[i], v[i] = move(x[i], v[i], dt, v_max, b, o)


@ti.kernel
def measure_density(
    x: nd_vec3, flags: nd_i32, free_head: nd_i32, rho: nd_f32, out: nd_f32,
    cell_start: nd_i32, g_origin: nd_vec3, g_shape: nd_ivec3, h: ti.f32, g_list: nd_i32, g_count: nd_i32,
    b_params: nd_f32, wall_table: nd_vec2, sdf: nd_f32_3d,
    mass: ti.f32, rho0: ti.f32,
):
    """rho_i for every active particle; out = (sum of max(rho_i/rho0 - 1, 0), active count, max speed)."""
    g = ti.static(GridArgs(x, cell_start, g_origin, g_shape, h, g_list, g_count))
    b = ti.static(BoundaryArgs(b_params, wall_table, h, sdf))
    f = ti.static(Fluid(mass, rho0, h))
    compression = 0.0  # kernel-local sums, reduced per thread (see dfsph.pressure_parameter)
    count = 0.0
    for i in range(in_use(free_head, x)):
        if flags[i] & ACTIVE:
            r, _wall = density(i, x[i], g, b, f)
            rho[i] = r
            compression += ti.max(r / rho0 - 1.0, 0.0)
            count += 1.0
    out[0] = compression
    out[1] = count


@ti.kernel
def frame_statistics(v: nd_vec3, flags: nd_i32, free_head: nd_i32, counters: nd_i32, out: nd_i32):
    """What the host reads at a frame's end, into the host array ``out`` in one launch: the
    fastest particle's speed (its float32 bits: not every backend has float64), free_head, then
    the counters of the particle cycle, which are zeroed for the next frame. Taichi 1.7 keeps a
    few bytes for each launch with a host array and each to_numpy (see
    state.ParticleState.read_active): three reads and a fill a frame were most of what a
    running solver still gained."""
    fastest = 0.0
    for i in range(in_use(free_head, v)):
        if flags[i] & ACTIVE:
            ti.atomic_max(fastest, v[i].norm())
    out[0] = ti.bit_cast(fastest, ti.i32)
    out[1] = free_head[0]
    for c in range(counters.shape[0]):
        out[2 + c] = counters[c]
        counters[c] = 0
