// The projector pass: a part of the composed picture, corner-pinned onto one output, with soft
// edges where neighbouring projectors overlap, and an optional grid warp to touch it up. Each
// output pixel is taken back through the grid, then through the inverse of the corner-pin
// homography, to the picture part it shows (render/warp.py).
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
uniform bool corner_guides;   // ring the corners in edit mode (not for an output on the rock)
out vec4 f_color;

// The grid warp is compiled in only for the outputs that have one (render/warp.py): on a
// software renderer its spline, even skipped by a uniform, made every output 50 % slower.
#if defined GRID
uniform ivec2 grid_shape;     // control points across, down
uniform vec2 grid[64];        // their offsets, output shares, row by row from the top-left
uniform int grid_selected;    // the control point being moved, -1 none

vec2 grid_point(int i, int j) {
    return grid[clamp(j, 0, grid_shape.y - 1) * grid_shape.x + clamp(i, 0, grid_shape.x - 1)];
}

// Catmull-Rom weights of the four control points around a span, at t in [0, 1] along it.
vec4 catmull_rom(float t) {
    float t2 = t * t, t3 = t2 * t;
    return 0.5 * vec4(-t3 + 2.0 * t2 - t, 3.0 * t3 - 5.0 * t2 + 2.0, -3.0 * t3 + 4.0 * t2 + t, t3 - t2);
}

// The grid's offset at output share p: a Catmull-Rom spline through the control points (C1, so
// straight lines bend without a kink at the grid lines), the end points repeated past the edges.
// grid_offset() in render/warp.py is the same sum.
vec2 grid_offset(vec2 p) {
    vec2 g = clamp(p, 0.0, 1.0) * vec2(grid_shape - 1);
    ivec2 cell = min(ivec2(floor(g)), grid_shape - 2);
    vec2 t = g - vec2(cell);
    vec4 wx = catmull_rom(t.x), wy = catmull_rom(t.y);
    vec2 sum = vec2(0.0);
    for (int j = 0; j < 4; j++) {
        vec2 row = vec2(0.0);
        for (int i = 0; i < 4; i++) row += wx[i] * grid_point(cell.x + i - 1, cell.y + j - 1);
        sum += wy[j] * row;
    }
    return sum;
}
#endif

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
    // Moving the control points by their offsets moves what was at q to q + offset(q); the pixel
    // at p shows what was at p - offset(p), the first-order inverse of that (exact for a constant
    // offset, off by offset . grad(offset) otherwise: a few hundredths of a pixel for a touch-up).
#if defined GRID
    p -= grid_offset(p);
#endif
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
        for (int i = 0; i < 4 && corner_guides; i++) {
            float r = length(px - corners[i] * out_size);
            float ring = 1.0 - clamp(abs(r - 14.0) - 1.0, 0.0, 1.0);
            vec3 colour = i == selected ? vec3(1.0, 0.35, 0.2) : vec3(1.0);
            c = mix(c, colour, ring);
            if (i == selected && r < 5.0) c = colour;
        }
#if defined GRID
        // the grid's control points where they are moved to: smaller rings, the picked one filled
        for (int j = 0; j < grid_shape.y; j++) {
            for (int i = 0; i < grid_shape.x; i++) {
                int k = j * grid_shape.x + i;
                vec2 at = vec2(i, j) / vec2(grid_shape - 1) + grid[k];
                float r = length(px - at * out_size);
                float ring = 1.0 - clamp(abs(r - 8.0) - 1.0, 0.0, 1.0);
                vec3 colour = k == grid_selected ? vec3(1.0, 0.35, 0.2) : vec3(0.3, 0.8, 1.0);
                c = mix(c, colour, ring);
                if (k == grid_selected && r < 4.0) c = colour;
            }
        }
#endif
    }
    f_color = vec4(c, 1.0);
}

#endif
