"""Solver tests run on Taichi's CPU backend, started once for the whole session."""

import pytest

from waterrock.backend import init_backend
from waterrock.scene import parse_scene


@pytest.fixture(scope="session", autouse=True)
def taichi_cpu():
    return init_backend("cpu")


def make_scene(**sections):
    """A scene from sections, with a small default domain."""
    data = {"domain": {"lower": [0.0, 0.0, 0.0], "upper": [0.4, 0.6, 0.4]}}
    data.update(sections)
    return parse_scene(data)
