// The rock as a dark flat shape, its silhouette under the flattening, with iso-height contours.

#if defined VERTEX_SHADER

uniform mat4 flatten;
in vec3 in_position;  // world, metres
out float v_height;

void main() {
    v_height = in_position.y;
    gl_Position = flatten * vec4(in_position, 1.0);
}

#elif defined FRAGMENT_SHADER

uniform vec3 color;
uniform vec3 contour_color;
uniform float contour_spacing;  // metres; 0: no contours
uniform float contour_width;    // pixels
in float v_height;
out vec4 f_color;

void main() {
    vec3 c = color;
    if (contour_spacing > 0.0) {
        float f = v_height / contour_spacing;
        // Distance to the nearest iso-height line in pixels: screen-space derivatives keep the
        // lines equally thin however steep the rock is under the flattening.
        float d = abs(fract(f + 0.5) - 0.5) / max(fwidth(f), 1e-6);
        float line = clamp(0.5 * contour_width + 0.5 - d, 0.0, 1.0);
        c = mix(c, contour_color, line);
    }
    f_color = vec4(c, 1.0);
}

#endif
