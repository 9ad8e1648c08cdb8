"""Fixtures for render tests: a software OpenGL context (EGL, Mesa llvmpipe on CI) and a small
deterministic water generator standing in for the solver."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest
import trimesh

from waterrock.snapshots import ParticleSnapshot

GOLDEN_ENV = "WATERROCK_REGEN_GOLDEN"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regen-golden", action="store_true", help="rewrite tests/render/golden/*.png")


@pytest.fixture(scope="session")
def regen_golden(request: pytest.FixtureRequest) -> bool:
    flag = request.config.getoption("--regen-golden", default=False)
    return bool(flag) or os.environ.get(GOLDEN_ENV) == "1"


@pytest.fixture(scope="session")
def gl_ctx():
    import moderngl

    from waterrock.render.target import release_context, standalone_context

    try:
        ctx = standalone_context()
    except Exception as err:  # no libEGL, no driver, no GL 3.3: nothing here can run
        pytest.skip(f"no standalone EGL OpenGL 3.3 context can be created: {err}")
    assert isinstance(ctx, moderngl.Context)
    yield ctx
    release_context(ctx)


ROCK_CENTER = np.array([0.0, -0.35, 0.0], np.float32)
ROCK_RADIUS = 0.45


def sphere_rock() -> trimesh.Trimesh:
    rock = trimesh.creation.icosphere(subdivisions=3, radius=ROCK_RADIUS)
    rock.apply_translation(ROCK_CENTER)
    return rock


def waterfall(n: int, frames: int, seed: int = 0, dt: float = 1.0 / 60.0,
              packing: bool = False) -> Iterator[ParticleSnapshot]:
    """Water falling from a sheet at y = 1.1 onto a sphere (the rock), sliding off it and
    re-emitted at the top when it falls below y = -1.2; ids shuffled every frame like a solver's
    reordering. Particles start spread over the fall so the first frames are not empty. With
    ``packing``, each snapshot says how packed the water is as a solver's would: packed (1) on
    the rock, a falling sheet stretched thinner the faster it falls (down to a lone drop's 0.32)."""
    rng = np.random.default_rng(seed)
    pos = np.c_[rng.uniform(-0.7, 0.7, n), rng.uniform(-1.2, 1.1, n), rng.uniform(-0.25, 0.25, n)]
    vel = np.zeros((n, 3))
    vel[:, 1] = -np.sqrt(2 * 9.81 * np.maximum(1.1 - pos[:, 1], 0.0))
    ids = np.arange(n, dtype=np.int32)
    for frame in range(frames):
        vel[:, 1] -= 9.81 * dt
        vel[:, 0] += 0.4 * np.sin(3.0 * pos[:, 1] + ids) * dt  # a little sway, so lines curve
        pos += vel * dt
        d = pos - ROCK_CENTER
        dist = np.linalg.norm(d, axis=1)
        hit = dist < ROCK_RADIUS
        normal = d[hit] / dist[hit, None]
        pos[hit] = ROCK_CENTER + normal * ROCK_RADIUS
        vn = np.sum(vel[hit] * normal, axis=1, keepdims=True)
        vel[hit] -= np.minimum(vn, 0.0) * normal  # slide along the rock, never into it
        recycled = pos[:, 1] < -1.2
        k = int(recycled.sum())
        pos[recycled] = np.c_[rng.uniform(-0.7, 0.7, k), np.full(k, 1.1), rng.uniform(-0.25, 0.25, k)]
        vel[recycled] = 0.0
        order = rng.permutation(n)
        rho = None
        if packing:
            on_rock = np.linalg.norm(pos - ROCK_CENTER, axis=1) < ROCK_RADIUS + 0.02
            rho = np.where(on_rock, 1.0, np.clip(1.4 / (1.0 + np.linalg.norm(vel, axis=1)), 0.32, 1.0))
            rho = rho[order].astype(np.float32)
        yield ParticleSnapshot(
            frame=frame, time=frame * dt, positions=pos[order].astype(np.float32),
            velocities=vel[order].astype(np.float32), ids=ids[order], recycled=recycled[order], packing=rho,
        )
