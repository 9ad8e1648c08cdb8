"""Rendering: particle trails as flattened lines over the rock's silhouette (moderngl).

The public names are imported lazily, so reading a scene (which needs only
:mod:`waterrock.render.settings`) does not load OpenGL, OpenCV or trimesh.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "Renderer": "waterrock.render.renderer",
    "OffscreenTarget": "waterrock.render.target",
    "standalone_context": "waterrock.render.target",
    "render_command": "waterrock.render.command",
    "load_program": "waterrock.render.programs",
    "ShaderError": "waterrock.render.programs",
    "flattening": "waterrock.render.projection",
    "RenderSettings": "waterrock.render.settings",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'waterrock.render' has no attribute {name!r}")
