"""SPH smoothing kernels: the cubic spline, W(r, h) with compact support h.

Monaghan 1992 ("Smoothed particle hydrodynamics", ARA&A 30, eq. 2.3), in the normalisation of
SPlisHSPlasH (support radius h, not the smoothing length): with q = |r| / h and
sigma = 8 / (pi h^3),

    W(q) = sigma (6 q^3 - 6 q^2 + 1)    for 0 <= q <= 1/2
    W(q) = sigma 2 (1 - q)^3             for 1/2 < q <= 1
    W(q) = 0                             otherwise

The Taichi functions are used inside solver kernels; the numpy twins build lookup tables and
serve the tests.
"""


import math

import numpy as np
import taichi as ti

from waterrock.solver.types import vec3

# Written without branches, which the neighbour loops would mispredict for about half the
# pairs: with a = max(1 - q, 0) and b = max(1/2 - q, 0),
#     W(q) = sigma (2 a^3 - 8 b^3),    dW/dq = 6 sigma (4 b^2 - a^2)
# (for q <= 1/2 both terms are on and expand to the first line above; past 1 both are zero).


@ti.func
def cubic_W(r_len: ti.f32, h: ti.f32) -> ti.f32:
    q = r_len / h
    a = ti.max(1.0 - q, 0.0)
    b = ti.max(0.5 - q, 0.0)
    return 8.0 / (math.pi * h * h * h) * (2.0 * a * a * a - 8.0 * b * b * b)


@ti.func
def cubic_gradW(r: vec3, h: ti.f32) -> vec3:
    """grad_i W(x_i - x_j) for r = x_i - x_j: points from j towards i times dW/dr (< 0)."""
    _, g = cubic_W_gradW(r, h)
    return g


@ti.func
def cubic_W_gradW(r: vec3, h: ti.f32):
    """W(|r|) and grad W(r) together, from one square root."""
    r_len = r.norm()
    q = r_len / h
    a = ti.max(1.0 - q, 0.0)
    b = ti.max(0.5 - q, 0.0)
    sigma = 8.0 / (math.pi * h * h * h)
    w = sigma * (2.0 * a * a * a - 8.0 * b * b * b)
    dw_dq = 6.0 * sigma * (4.0 * b * b - a * a)
    return w, (dw_dq / (h * ti.max(r_len, 1e-9))) * r


def cubic_W_np(r_len: np.ndarray, h: float) -> np.ndarray:
    q = np.asarray(r_len, dtype=np.float64) / h
    sigma = 8.0 / (math.pi * h**3)
    return np.where(q <= 0.5, sigma * (6 * q**3 - 6 * q**2 + 1), np.where(q <= 1.0, sigma * 2 * (1 - q) ** 3, 0.0))


def cubic_gradW_np(r: np.ndarray, h: float) -> np.ndarray:
    r = np.asarray(r, dtype=np.float64)
    r_len = np.linalg.norm(r, axis=-1, keepdims=True)
    q = r_len / h
    l = 48.0 / (math.pi * h**3)
    with np.errstate(invalid="ignore", divide="ignore"):
        dq = np.where(r_len > 1e-12, r / (r_len * h), 0.0)
    f = np.where(q <= 0.5, l * q * (3 * q - 2), np.where(q <= 1.0, -l * (1 - q) ** 2, 0.0))
    return f * dq


def half_space_tables(h: float, samples: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Tables of the kernel's integral over a half-space, for a planar boundary at distance d.

    Gamma(d) = integral of W(x - y) over the solid half-space {y : (x - y) . n > d}, and
    A(d) = -dGamma/dd, the kernel integrated over the plane at distance d. Then a flat wall at
    signed distance d contributes rho_b = rho0 Gamma(d) to the density and
    grad rho_b = -rho0 A(d) n (n the wall's normal into the fluid): the density-map boundary of
    Koschier & Bender 2017 ("Density maps for improved SPH boundary handling", SCA), eq. 7-9,
    with the local geometry taken as planar so that one table serves every wall and the rock.
    With s^2 = rho^2 + z^2, A(z) = 2 pi integral_{|z|}^{h} W(s) s ds.

    Sampled at d = linspace(-h, h, samples).
    """
    d = np.linspace(-h, h, samples)
    s = np.linspace(0.0, h, 4097)
    ws = cubic_W_np(s, h) * s
    # cumulative trapezoid from s to h
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (ws[1:] + ws[:-1]) * np.diff(s))])
    tail = cum[-1] - cum  # integral from s_k to h
    A = 2.0 * math.pi * np.interp(np.abs(d), s, tail)
    # Gamma(d) = integral_d^h A(z) dz, by cumulative trapezoid from the top
    seg = 0.5 * (A[1:] + A[:-1]) * np.diff(d)
    gamma = np.concatenate([np.cumsum(seg[::-1])[::-1], [0.0]])
    return gamma.astype(np.float32), A.astype(np.float32)


def lattice_wall_correction(h: float, spacing: float, gamma: np.ndarray) -> float:
    """The factor that makes the continuous half-space integral Gamma agree with a particle lattice.

    A fluid at rest is a lattice of the given spacing; the layer against a wall sits half a
    spacing from it. There, the discrete sum of the missing (wall-side) lattice, which is what a
    particle boundary (Akinci et al. 2012) would add, and the continuous Gamma(spacing / 2) of
    the density map differ: by 20 % at h = 2 spacing, so an unscaled map puts the wall layer
    4 % over rest density, and an incompressible solver turns that into a jet in its first step.
    Returns ghost sum / Gamma(spacing / 2); the boundary scales Gamma and A by it.
    """
    n = int(math.ceil(h / spacing)) + 1
    k = np.arange(-n, n + 1) * spacing
    p = np.stack(np.meshgrid(k, k, k, indexing="ij"), axis=-1).reshape(-1, 3)
    w = cubic_W_np(np.linalg.norm(p, axis=1), h) * spacing**3
    full = w.sum()
    ghost = w[p[:, 2] < -0.5 * spacing].sum()
    d = np.linspace(-h, h, len(gamma))
    return float(ghost / full / np.interp(0.5 * spacing, d, gamma))
