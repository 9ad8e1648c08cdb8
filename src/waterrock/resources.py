"""Where the shipped data lives: shaders/ and scenes/ at the top of the repository.

A wheel installs them as the data packages ``waterrock.shaders`` and ``waterrock.scenes``
(see pyproject.toml); a source checkout or an editable install reads them in place.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def resource_dir(name: str) -> Path:
    """The folder holding the shipped ``shaders`` or ``scenes``."""
    if name not in ("shaders", "scenes"):
        raise ValueError(f"unknown resource folder {name!r}: expected 'shaders' or 'scenes'")
    in_checkout = REPO_ROOT / name
    if in_checkout.is_dir():
        return in_checkout
    return Path(str(importlib.resources.files(f"waterrock.{name}")))


def scene_path(name_or_path: str | Path) -> Path:
    """A scene given by file path, or by the name of a shipped scene ('default', 'dam_break')."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        return p
    shipped = resource_dir("scenes") / f"{p.name}.toml"
    if shipped.exists():
        return shipped
    known = sorted(q.stem for q in resource_dir("scenes").glob("*.toml"))
    raise FileNotFoundError(f"no scene file {str(p)!r} and no shipped scene of that name (shipped: {known})")
