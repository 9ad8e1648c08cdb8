"""Fixtures every test folder may use."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def gl_ctx():
    """An offscreen context for one test module, unbound after it (see release_context)."""
    from waterrock.render.target import release_context, standalone_context

    try:
        ctx = standalone_context()
    except Exception as err:  # noqa: BLE001 - no libEGL, no driver, no GL 3.3: nothing here can run
        pytest.skip(f"no standalone EGL OpenGL 3.3 context can be created: {err}")
    yield ctx
    release_context(ctx)
