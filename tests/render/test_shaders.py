from __future__ import annotations

from pathlib import Path

import pytest

from waterrock.render.programs import ShaderError, load_program, stage_sources
from waterrock.resources import resource_dir

SHADERS = sorted(p.stem for p in resource_dir("shaders").glob("*.glsl"))

BROKEN = """\
// a fragment shader with a syntax error on line 12
#if defined VERTEX_SHADER
void main() {
    gl_Position = vec4(0.0);
}
#elif defined FRAGMENT_SHADER

out vec4 f_color;

void main() {
    float a = 1.0;
    f_color = vec4(a) +;
}
#endif
"""


def test_there_are_shaders():
    assert {"lines", "rock", "compose"} <= set(SHADERS)


@pytest.mark.gl
@pytest.mark.parametrize("name", SHADERS)
def test_every_shader_compiles_and_links(gl_ctx, name):
    program = load_program(gl_ctx, name)
    program.release()


@pytest.mark.gl
def test_syntax_error_names_the_file_and_line(gl_ctx, tmp_path: Path):
    (tmp_path / "broken.glsl").write_text(BROKEN)
    with pytest.raises(ShaderError) as info:
        load_program(gl_ctx, "broken", folder=tmp_path, defines={"EXTRA": 1})
    err = info.value
    assert err.path == tmp_path / "broken.glsl"
    assert err.line == 12
    assert err.stage == "fragment_shader"
    assert "broken.glsl:12: fragment_shader:" in str(err)


@pytest.mark.gl
def test_vertex_error_line_in_a_file_with_its_own_version(gl_ctx, tmp_path: Path):
    text = "#version 330 core\n#if defined VERTEX_SHADER\nvoid main() {\n    undeclared = 1.0;\n}\n#endif\n"
    (tmp_path / "v.glsl").write_text(text)
    with pytest.raises(ShaderError) as info:
        load_program(gl_ctx, "v", folder=tmp_path)
    assert (info.value.line, info.value.stage) == (4, "vertex_shader")


def test_unknown_shader_lists_the_known_ones():
    with pytest.raises(FileNotFoundError, match="lines"):
        load_program(None, "no_such_program")


def test_stage_split_prepends_version_and_define():
    sources, prepended = stage_sources(BROKEN, {"A": 2})
    assert set(sources) == {"vertex_shader", "fragment_shader"}
    lines = sources["fragment_shader"].splitlines()
    assert lines[:3] == ["#version 330 core", "#define FRAGMENT_SHADER 1", "#define A 2"]
    assert prepended == 3 and lines[prepended + 11] == "    f_color = vec4(a) +;"
