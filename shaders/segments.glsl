// Baseline for benchmarks/bench_render.py: the same segments as plain 1-pixel GL_LINES.

#if defined VERTEX_SHADER

uniform mat4 flatten;
in vec3 in_position;

void main() {
    gl_Position = flatten * vec4(in_position, 1.0);
}

#elif defined FRAGMENT_SHADER

uniform vec4 color;
out vec4 f_color;

void main() {
    f_color = color;
}

#endif
