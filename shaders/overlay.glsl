// The debug overlay: a text image (drawn on the CPU with OpenCV) blitted as a textured quad,
// blended over the picture. `rect` is the quad in normalised device coordinates (x0, y0, x1, y1).

#if defined VERTEX_SHADER

uniform vec4 rect;
out vec2 v_uv;

void main() {
    // A triangle strip of four corners, from the vertex id alone.
    vec2 corner = vec2(float(gl_VertexID & 1), float((gl_VertexID >> 1) & 1));
    v_uv = vec2(corner.x, 1.0 - corner.y);  // image row 0 is the top row
    gl_Position = vec4(mix(rect.xy, rect.zw, corner), 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

uniform sampler2D text;
in vec2 v_uv;
out vec4 f_color;

void main() {
    f_color = texture(text, v_uv);
}

#endif
