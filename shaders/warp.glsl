// The projector pass: a part of the composed picture, corner-pinned onto one output, with soft
// edges where neighbouring projectors overlap. Each output pixel is taken back through the
// inverse of the corner-pin homography to the picture part it shows (render/warp.py).
// Coordinates are shares of a width or height from the top-left corner, y down, as in the scene.

#if defined VERTEX_SHADER

void main() {
    // One triangle that covers the screen, from the vertex id alone.
    vec2 p = vec2(float((gl_VertexID & 1) << 2), float((gl_VertexID & 2) << 1)) - 1.0;
    gl_Position = vec4(p, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

uniform sampler2D picture;
uniform vec2 out_size;        // output pixels
uniform mat3 inverse;         // output share -> region share (projective)
uniform vec4 region;          // left, top, right, bottom of the picture part, shares of the picture
uniform vec4 blend;           // left, right, top, bottom blend widths, shares of the region
uniform float gamma;          // the projector's: light = value ^ gamma
uniform float power;          // the ramp's steepness at its middle
uniform bool edit;            // draw the calibration guides
uniform vec2 corners[4];      // output shares, for the guides
uniform int selected;         // the corner being moved, -1 none
out vec4 f_color;

// Bourke's blend curve: 0 at the outer edge, 1 at the inner end, f(x) + f(1 - x) = 1.
float ramp(float x) {
    x = clamp(x, 0.0, 1.0);
    return x < 0.5 ? 0.5 * pow(2.0 * x, power) : 1.0 - 0.5 * pow(2.0 * (1.0 - x), power);
}

float edge(float distance_in, float width) {
    return width > 0.0 ? ramp(distance_in / width) : 1.0;
}

void main() {
    vec2 px = vec2(gl_FragCoord.x, out_size.y - gl_FragCoord.y);  // pixels from the top-left
    vec2 p = px / out_size;
    vec3 q = inverse * vec3(p, 1.0);
    vec2 uv = q.xy / q.z;
    bool inside = q.z > 0.0 && all(greaterThanEqual(uv, vec2(0.0))) && all(lessThanEqual(uv, vec2(1.0)));
    vec3 c = vec3(0.0);
    if (inside) {
        vec2 s = mix(region.xy, region.zw, uv);             // picture share, y down
        c = texture(picture, vec2(s.x, 1.0 - s.y)).rgb;     // texture rows run bottom to top
        float light = edge(uv.x, blend.x) * edge(1.0 - uv.x, blend.y)
                    * edge(uv.y, blend.z) * edge(1.0 - uv.y, blend.w);
        c *= pow(light, 1.0 / gamma);
    }
    if (edit) {
        // a grid of eighths of the region, a pixel wide whatever the warp
        if (inside) {
            vec2 g = uv * 8.0;
            vec2 d = abs(fract(g - 0.5) - 0.5) / max(fwidth(g), vec2(1e-6));
            float line = 1.0 - clamp(min(d.x, d.y), 0.0, 1.0);
            c = mix(c, vec3(0.2, 0.9, 0.4), 0.8 * line);
        }
        for (int i = 0; i < 4; i++) {
            float r = length(px - corners[i] * out_size);
            float ring = 1.0 - clamp(abs(r - 14.0) - 1.0, 0.0, 1.0);
            vec3 colour = i == selected ? vec3(1.0, 0.35, 0.2) : vec3(1.0);
            c = mix(c, colour, ring);
            if (i == selected && r < 5.0) c = colour;
        }
    }
    f_color = vec4(c, 1.0);
}

#endif
