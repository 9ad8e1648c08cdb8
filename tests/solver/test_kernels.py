"""The cubic spline kernel integrates to one, its gradient to zero; the half-space tables."""

import numpy as np
import pytest

from waterrock.solver.kernels import cubic_gradW_np, cubic_W_np, half_space_tables


@pytest.mark.parametrize("h", [0.02, 0.04, 0.1])
def test_kernel_normalisation(h):
    n = 81  # lattice over [-h, h]^3, midpoint rule
    s = (np.arange(n) + 0.5) / n * 2 * h - h
    g = np.stack(np.meshgrid(s, s, s, indexing="ij"), -1).reshape(-1, 3)
    dv = (2 * h / n) ** 3
    integral_W = cubic_W_np(np.linalg.norm(g, axis=1), h).sum() * dv
    grad = cubic_gradW_np(g, h)
    integral_grad = grad.sum(axis=0) * dv
    scale = np.abs(grad).sum(axis=0) * dv  # integral of |grad W| per axis
    assert abs(integral_W - 1.0) < 0.01
    assert np.all(np.abs(integral_grad) < 0.01 * scale)


def test_kernel_gradient_matches_finite_differences():
    h = 0.05
    rng = np.random.default_rng(1)
    r = rng.uniform(-h, h, (200, 3))
    r = r[np.linalg.norm(r, axis=1) > 1e-3]
    eps = 1e-6
    fd = np.stack([
        (cubic_W_np(np.linalg.norm(r + eps * e, axis=1), h) - cubic_W_np(np.linalg.norm(r - eps * e, axis=1), h))
        / (2 * eps) for e in np.eye(3)
    ], axis=1)
    np.testing.assert_allclose(cubic_gradW_np(r, h), fd, rtol=1e-4, atol=1e-3 * np.abs(fd).max())


def test_half_space_integral():
    h = 0.04
    gamma, area = half_space_tables(h)
    d = np.linspace(-h, h, len(gamma))
    assert gamma[0] == pytest.approx(1.0, abs=1e-3)  # deep inside the solid: the whole kernel
    assert np.interp(0.0, d, gamma) == pytest.approx(0.5, abs=1e-3)  # on the wall: half of it
    assert gamma[-1] == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.diff(gamma) <= 1e-7)
    # A = -dGamma/dd
    np.testing.assert_allclose(-np.gradient(gamma, d)[5:-5], area[5:-5], rtol=0.02, atol=0.2)


def test_taichis_kernel_and_gradient_are_exactly_zero_from_the_support_radius_on():
    """The stored lists' loop does not test |r| < h again (neighbors.for_each_neighbor): a neighbour
    PBF has moved past h since the sort must add nothing to any term, which every term weighs by
    W or grad W. Inside h both agree with the numpy reference."""
    import taichi as ti

    from waterrock.solver.kernels import cubic_W, cubic_W_gradW

    h = 0.04
    rng = np.random.default_rng(3)
    dirs = rng.normal(size=(400, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    lengths = np.concatenate([np.linspace(h, 3 * h, 200), rng.uniform(0.01 * h, 0.999 * h, 200)])
    r = (dirs * lengths[:, None]).astype(np.float32)
    r_nd = ti.ndarray(ti.math.vec3, len(r))
    r_nd.from_numpy(r)
    out = ti.ndarray(ti.math.vec4, len(r))
    w_alone = ti.ndarray(ti.f32, len(r))

    @ti.kernel
    def evaluate(r: ti.types.ndarray(ti.math.vec3, 1), out: ti.types.ndarray(ti.math.vec4, 1),
                 w_alone: ti.types.ndarray(ti.f32, 1), h: ti.f32):
        for i in range(r.shape[0]):
            w, grad = cubic_W_gradW(r[i], h)
            out[i] = ti.math.vec4(w, grad)
            w_alone[i] = cubic_W(r[i].norm(), h)

    evaluate(r_nd, out, w_alone, h)
    got, alone = out.to_numpy(), w_alone.to_numpy()
    beyond = np.linalg.norm(r, axis=1) >= h
    assert beyond.sum() >= 190
    assert np.all(got[beyond] == 0.0) and np.all(alone[beyond] == 0.0)
    inside = ~beyond
    np.testing.assert_allclose(got[inside, 0], cubic_W_np(np.linalg.norm(r[inside], axis=1), h), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(got[inside, 1:], cubic_gradW_np(r[inside].astype(np.float64), h), rtol=1e-3,
                               atol=1e-3 * np.abs(got[inside, 1:]).max())
