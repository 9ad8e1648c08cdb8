"""Shader programs loaded by name from shaders/, one GLSL file per program.

Each file holds every stage, split by ``#if defined VERTEX_SHADER`` / ``FRAGMENT_SHADER`` as in
moderngl-window. We prepend ``#version`` and one ``#define`` per stage, so the driver's line
numbers are off by the lines we added; :func:`load_program` maps them back and raises a
:class:`ShaderError` that names the file and the line an artist would open.
"""

from __future__ import annotations

import re
from pathlib import Path

import moderngl

from waterrock.resources import resource_dir

GLSL_VERSION = "#version 330 core"
STAGES = {"vertex_shader": "VERTEX_SHADER", "fragment_shader": "FRAGMENT_SHADER"}

# Mesa / Intel / AMD: "0:12(5): error: ..."; NVIDIA: "0(12) : error C0000: ...".
_LINE_PATTERNS = (
    re.compile(r"^\s*(?:ERROR: )?\d+:(?P<line>\d+)(?:\((?P<col>\d+)\))?:\s*(?P<msg>.*)$"),
    re.compile(r"^\s*\d+\((?P<line>\d+)\)\s*:\s*(?P<msg>.*)$"),
)


class ShaderError(RuntimeError):
    """A program that does not compile or link; ``path`` and ``line`` point into the .glsl file."""

    def __init__(self, path: Path, line: int | None, stage: str, message: str):
        self.path, self.line, self.stage = path, line, stage
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {stage}: {message}")


def shader_path(name: str, folder: Path | None = None) -> Path:
    folder = resource_dir("shaders") if folder is None else Path(folder)
    path = folder / f"{name}.glsl"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.glsl"))
        raise FileNotFoundError(f"no shader {name!r} in {folder} (have: {known})")
    return path


def stage_sources(text: str, defines: dict[str, object] | None = None, stages: dict[str, str] = STAGES,
                  version: str = GLSL_VERSION) -> tuple[dict[str, str], int]:
    """The source of each stage present in ``text``, and how many lines were prepended to it."""
    # A #version in the file would have to come first; we write our own, and blank the file's
    # line instead of removing it so its line numbers stay true.
    body = re.sub(r"^[ \t]*#version[^\n]*", "", text, count=1, flags=re.MULTILINE)
    extra = [f"#define {k} {v}" for k, v in (defines or {}).items()]
    sources = {}
    for stage, macro in stages.items():
        if re.search(rf"\b{macro}\b", text):
            sources[stage] = "\n".join([version, f"#define {macro} 1", *extra, body])
    return sources, 2 + len(extra)


def _located(path: Path, stage: str, log: str, prepended: int) -> ShaderError:
    for raw in log.splitlines():
        for pattern in _LINE_PATTERNS:
            m = pattern.match(raw)
            if m:
                line = int(m["line"]) - prepended
                col = f", column {m['col']}" if m.groupdict().get("col") else ""
                return ShaderError(path, line, stage, f"{m['msg'].strip()}{col}")
    return ShaderError(path, None, stage, log.strip() or "link failed")


def load_program(
    ctx: moderngl.Context, name: str, defines: dict[str, object] | None = None, folder: Path | None = None
) -> moderngl.Program:
    """Compile and link ``shaders/<name>.glsl``; a failure names the file and the line."""
    path = shader_path(name, folder)
    sources, prepended = stage_sources(path.read_text(encoding="utf-8"), defines)
    if "vertex_shader" not in sources:
        raise ShaderError(path, None, "vertex_shader", "no '#if defined VERTEX_SHADER' section")
    try:
        return ctx.program(**sources)
    except moderngl.Error as err:
        log = str(err)
        # moderngl heads the driver's log with the stage's keyword name ("fragment_shader\n===").
        stage = next((s for s in STAGES if re.search(rf"^{s}$", log, re.MULTILINE)), "program")
        raise _located(path, stage, log, prepended) from None


COMPUTE_VERSION = "#version 430 core"  # compute shaders and image atomics


def load_compute(
    ctx: moderngl.Context, name: str, defines: dict[str, object] | None = None, folder: Path | None = None
) -> moderngl.ComputeShader:
    """Compile the ``COMPUTE_SHADER`` section of ``shaders/<name>.glsl`` (OpenGL 4.3); a failure
    names the file and the line."""
    path = shader_path(name, folder)
    sources, prepended = stage_sources(path.read_text(encoding="utf-8"), defines,
                                       {"compute_shader": "COMPUTE_SHADER"}, COMPUTE_VERSION)
    if "compute_shader" not in sources:
        raise ShaderError(path, None, "compute_shader", "no '#if defined COMPUTE_SHADER' section")
    if ctx.version_code < 430:
        raise ShaderError(path, None, "compute_shader", f"needs OpenGL 4.3; this context has {ctx.version_code}")
    try:
        return ctx.compute_shader(sources["compute_shader"])
    except moderngl.Error as err:
        raise _located(path, "compute_shader", str(err), prepended) from None
