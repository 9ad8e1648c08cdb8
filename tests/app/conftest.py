"""Fixtures for the app tests: a small scene written here. The private Xvfb display and the
offscreen OpenGL context (EGL; Mesa llvmpipe on CI) are in tests/conftest.py, for every folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.app_helpers import TINY_SCENE


@pytest.fixture(scope="session")
def tiny_scene(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("scenes") / "tiny.toml"
    p.write_text(TINY_SCENE, encoding="utf-8")
    return p


