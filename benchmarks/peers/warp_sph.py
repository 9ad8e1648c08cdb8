"""NVIDIA Warp's SPH on the benchmark's dam break: WCSPH (Becker & Teschner 2007).

Written in the manner of Warp's own ``warp/examples/core/example_sph.py`` (NVIDIA, Apache-2.0):
a ``wp.HashGrid`` rebuilt every step, threads ordered by cell with ``hash_grid_point_id``, a
density kernel, an acceleration kernel and kick/drift, every kernel input explicit. That
example's scene and kernels (poly6/spiky, linear equation of state, arbitrary units) cannot be
given our dam break, so this script runs the same scheme with the benchmark's physics: the
cubic spline kernel (support 4r), Tait's equation (B, gamma, clamped at 0), symmetric pressure
force, XSPH viscosity, symplectic Euler. The tank walls are a clamp with the normal velocity
removed (as the example's ``apply_bounds``), without a boundary density: the density error is
measured on interior particles, away from the walls, for every solver alike.

On the CPU, Warp runs each kernel launch on one thread: its CPU figures are single-threaded.
"""

from __future__ import annotations

import math
import time

import numpy as np
import warp as wp
from protocol import parse_args, write_result


@wp.func
def cubic_w(r: float, h: float):
    q = r / h
    sigma = 8.0 / (wp.pi * h * h * h)
    w = float(0.0)  # noqa: UP018 - Warp: a variable changed in a branch is declared so
    if q <= 0.5:
        w = sigma * (6.0 * q * q * q - 6.0 * q * q + 1.0)
    elif q <= 1.0:
        w = sigma * 2.0 * (1.0 - q) * (1.0 - q) * (1.0 - q)
    return w


@wp.func
def cubic_grad_w(d: wp.vec3, h: float):
    r = wp.length(d)
    q = r / h
    l = 48.0 / (wp.pi * h * h * h)
    g = wp.vec3(0.0)
    if r > 1.0e-9 and q <= 1.0:
        dq = d / (r * h)
        if q <= 0.5:
            g = l * q * (3.0 * q - 2.0) * dq
        else:
            g = -l * (1.0 - q) * (1.0 - q) * dq
    return g


@wp.kernel
def compute_density(grid: wp.uint64, x: wp.array(dtype=wp.vec3), rho: wp.array(dtype=float),
                    mass: float, h: float):
    i = wp.hash_grid_point_id(grid, wp.tid())
    xi = x[i]
    s = float(0.0)  # noqa: UP018 - Warp: a variable changed in a loop is declared so
    for j in wp.hash_grid_query(grid, xi, h):
        s += mass * cubic_w(wp.length(xi - x[j]), h)
    rho[i] = s


@wp.kernel
def compute_acceleration(grid: wp.uint64, x: wp.array(dtype=wp.vec3), v: wp.array(dtype=wp.vec3),
                         rho: wp.array(dtype=float), a: wp.array(dtype=wp.vec3), mass: float, h: float,
                         rho0: float, stiffness: float, exponent: float, xsph: float, gravity: wp.vec3,
                         dt: float):
    i = wp.hash_grid_point_id(grid, wp.tid())
    xi, vi, rho_i = x[i], v[i], rho[i]
    ki = wp.max(stiffness * (wp.pow(rho_i / rho0, exponent) - 1.0), 0.0) / (rho_i * rho_i)
    acc = gravity
    dv = wp.vec3(0.0)
    for j in wp.hash_grid_query(grid, xi, h):
        if j != i:
            d = xi - x[j]
            rho_j = rho[j]
            kj = wp.max(stiffness * (wp.pow(rho_j / rho0, exponent) - 1.0), 0.0) / (rho_j * rho_j)
            acc -= mass * (ki + kj) * cubic_grad_w(d, h)  # Becker & Teschner 2007, eq. 6
            dv += (mass / rho_j) * (v[j] - vi) * cubic_w(wp.length(d), h)  # XSPH
    a[i] = acc + xsph * dv / dt


@wp.kernel
def kick_drift(x: wp.array(dtype=wp.vec3), v: wp.array(dtype=wp.vec3), a: wp.array(dtype=wp.vec3),
               dt: float, lower: wp.vec3, upper: wp.vec3):
    i = wp.tid()
    vi = v[i] + dt * a[i]
    xi = x[i] + dt * vi
    for k in range(3):  # the tank: clamp, and remove the velocity into the wall
        if xi[k] < lower[k]:
            xi[k] = lower[k]
            vi[k] = wp.max(vi[k], 0.0)
        if xi[k] > upper[k]:
            xi[k] = upper[k]
            vi[k] = wp.min(vi[k], 0.0)
    x[i] = xi
    v[i] = vi


class DamBreak:
    def __init__(self, case: dict, positions: np.ndarray, device: str):
        self.device = device
        r = case["radius"]
        self.h = 4.0 * r
        self.rho0 = case["rest_density"]
        self.mass = self.rho0 * (2.0 * r) ** 3
        self.dt = case["time_step"]
        self.params = (case["stiffness"], case["exponent"], case["viscosity"])
        self.lower = wp.vec3(*[c + r for c in case["lower"]])
        self.upper = wp.vec3(*[c - r for c in case["upper"]])
        self.x0 = positions
        self.n = len(positions)
        self.x = wp.array(positions, dtype=wp.vec3, device=device)
        self.v = wp.zeros(self.n, dtype=wp.vec3, device=device)
        self.rho = wp.zeros(self.n, dtype=float, device=device)
        self.a = wp.zeros(self.n, dtype=wp.vec3, device=device)
        dims = [max(1, math.ceil((u - lo) / self.h)) for lo, u in zip(case["lower"], case["upper"], strict=True)]
        self.grid = wp.HashGrid(*dims, device=device)

    def reset(self) -> None:
        self.x.assign(wp.array(self.x0, dtype=wp.vec3, device=self.device))
        self.v.zero_()

    def step(self) -> None:
        stiffness, exponent, xsph = self.params
        self.grid.build(self.x, self.h)
        wp.launch(compute_density, self.n, inputs=[self.grid.id, self.x, self.rho, self.mass, self.h],
                  device=self.device)
        wp.launch(compute_acceleration, self.n,
                  inputs=[self.grid.id, self.x, self.v, self.rho, self.a, self.mass, self.h, self.rho0,
                          stiffness, exponent, xsph, wp.vec3(0.0, -9.81, 0.0), self.dt], device=self.device)
        wp.launch(kick_drift, self.n, inputs=[self.x, self.v, self.a, self.dt, self.lower, self.upper],
                  device=self.device)


def lattice(lower, upper, spacing) -> np.ndarray:
    lo, hi = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    n = np.maximum(np.floor((hi - lo) / spacing + 1e-6).astype(int), 1)
    axes = [lo[a] + spacing * (0.5 + np.arange(n[a])) for a in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3).astype(np.float32)


def main() -> None:
    case, out, device = parse_args(__doc__.splitlines()[0])
    if case["method"] != "wcsph":
        raise SystemExit(f"warp_sph.py runs WCSPH only, not {case['method']}")
    wp.config.quiet = True
    wp.init()
    positions = lattice(*case["block"], 2.0 * case["radius"])
    sim = DamBreak(case, positions, device)
    sim.step()  # warm-up: kernels compiled and loaded, the grid allocated
    wp.synchronize_device(device)
    sim.reset()
    wp.synchronize_device(device)
    t0 = time.perf_counter()
    for _ in range(case["steps"]):
        sim.step()
    wp.synchronize_device(device)
    wall = time.perf_counter() - t0
    dev = wp.get_device(device)
    write_result(
        out, sim.x.numpy(), peer="warp", method="wcsph", particles=sim.n, steps=case["steps"],
        timed_steps=case["steps"], wall_s=wall, device=f"{dev.alias} ({dev.name})",
        threads=1 if dev.is_cpu else None, warp_version=wp.config.version,
        note="Warp's CPU backend runs kernels single-threaded" if dev.is_cpu else "",
    )


if __name__ == "__main__":
    main()
