"""Every module of the package imports in a clean interpreter, and everything the code imports is
declared in pyproject.toml: a module that this machine happens to have must not hide a missing
dependency (trimesh's mesh repair needed networkx, which nothing declared)."""

from __future__ import annotations

import ast
import importlib.metadata
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import waterrock
from waterrock.resources import REPO_ROOT

SOURCES = [REPO_ROOT / "src" / "waterrock", REPO_ROOT / "benchmarks" / "peers"]
# Imported by a module name that is not its distribution's name.
DISTRIBUTION_OF = {"cv2": "opencv-contrib-python", "igl": "libigl", "pythonosc": "python-osc",
                   "yaml": "pyyaml", "warp": "warp-lang", "charset_normalizer": "charset-normalizer", "zmq": "pyzmq",
                   "pythonoscquery": "python-oscquery"}


def _declared() -> tuple[set[str], set[str]]:
    """The distributions that waterrock requires, and those that only its extras bring."""
    core, extras = set(), set()
    for req in importlib.metadata.requires("waterrock") or []:
        name = re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower().replace("_", "-")
        (extras if "extra ==" in req else core).add(name)
    return core, extras - core


def _imported_modules() -> dict[str, list[str]]:
    """Top-level names of every import statement in the package's sources (nested ones included),
    with the files that import them."""
    found: dict[str, list[str]] = {}
    for folder in SOURCES:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    if (path.parent / f"{name.split('.')[0]}.py").exists():
                        continue  # a script's sibling module (the peers' protocol.py)
                    found.setdefault(name.split(".")[0], []).append(str(path.relative_to(REPO_ROOT)))
    return found


def test_every_third_party_import_is_declared():
    core, extras = _declared()
    assert {"networkx", "libigl", "rich", "charset-normalizer"} <= core
    undeclared = []
    for module, files in sorted(_imported_modules().items()):
        if module in sys.stdlib_module_names or module in ("waterrock", "__future__"):
            continue
        dist = DISTRIBUTION_OF.get(module, module).lower().replace("_", "-")
        if dist not in core | extras:
            undeclared.append(f"{module} ({dist}), imported by {sorted(set(files))[0]}")
    assert not undeclared, "imported but not declared in pyproject.toml: " + "; ".join(undeclared)


def test_every_module_of_the_package_imports_in_a_clean_interpreter():
    modules = sorted(m.name for m in pkgutil.walk_packages(waterrock.__path__, "waterrock."))
    assert len(modules) > 40 and "waterrock.solver.mesh_sdf" in modules
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\nprint('ok')"
    done = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True, timeout=300,
                          cwd=Path("/"))  # not the checkout: what is installed, as a user has it
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]

