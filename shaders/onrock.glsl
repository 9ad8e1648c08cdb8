// The picture on the rock's shape: the rock mesh as the calibrated projector sees it, each
// fragment coloured by the composed picture where the flattening puts that rock point
// (render/onrock.py). Projective texturing run backwards: the texture is indexed by the
// flattening, the geometry by the projector.

#if defined VERTEX_SHADER

uniform mat4 view;        // world -> projector frame (x right, y down, z forward), OpenCV's R, t
uniform mat4 projection;  // projector frame -> clip, the pinhole K as a frustum (Pinhole.gl_matrix)
uniform vec3 radial;      // OpenCV's k1, k2, k3
uniform vec2 tangential;  // OpenCV's p1, p2
uniform float fold;       // normalised radius where the radial distortion turns back on itself
in vec3 in_position;      // world, metres
out vec3 v_world;

// OpenCV's lens model (Brown-Conrady; Heikkila & Silven 1997) on the normalised image point.
vec2 distort(vec2 a) {
    float r2 = dot(a, a);
    float radial_gain = 1.0 + r2 * (radial.x + r2 * (radial.y + r2 * radial.z));
    float xy = a.x * a.y;
    return a * radial_gain + vec2(2.0 * tangential.x * xy + tangential.y * (r2 + 2.0 * a.x * a.x),
                                  tangential.x * (r2 + 2.0 * a.y * a.y) + 2.0 * tangential.y * xy);
}

void main() {
    v_world = in_position;
    vec4 x = view * vec4(in_position, 1.0);
    if (x.z > 0.0) {
        // Distortion bends the image, not depth: move the vertex within its depth plane to where
        // the lens sends it. Per vertex, so a triangle's inside follows the straight line between
        // its corners: fine for a mesh whose triangles are small against the lens's curvature.
        vec2 a = x.xy / x.z;
        float r = length(a);
        // Past the fold the polynomial turns back and would fold the far rock over the picture;
        // scaling from the fold's gain keeps those points moving outward, off the image.
        float s = r > fold ? fold / r : 1.0;
        x.xy = distort(a * s) / s * x.z;
    }
    gl_Position = projection * x;
}

#elif defined FRAGMENT_SHADER

uniform sampler2D picture;
uniform mat4 flatten;   // world -> the composed picture's clip space, as the renderer drew it
in vec3 v_world;
out vec4 f_color;

// Compiled in only where projectors overlap (render/onrock.py): on a software renderer, even
// skipped by a uniform, it made every output on the rock four times slower.
#if defined BLEND
// Blending where calibrated projectors overlap on the rock (Raskar et al., "Multi-projector
// displays using camera-based registration", 1999): each projector k that lights a rock point
// weighs it by how far inside its own image the point lies (a ramp of ramp_px pixels from its
// edge), and gives the share e_self / sum_k e_k of the light there, through its gamma.
uniform int blend_n;          // projectors that take part, this one among them
uniform int self_index;       // which of them is this one
uniform mat4 b_view[4];       // world -> projector k's frame
uniform vec4 b_k[4];          // its fx, fy, cx, cy (pixels)
uniform vec2 b_size[4];       // its pixels
uniform sampler2D b_depth0;   // its distance to the rock along its axis (device_depth.glsl)
uniform sampler2D b_depth1;
uniform sampler2D b_depth2;
uniform sampler2D b_depth3;
uniform float ramp_px;
uniform float gamma;

float depth_of(int k, vec2 st) {
    if (k == 0) return texture(b_depth0, st).r;
    if (k == 1) return texture(b_depth1, st).r;
    if (k == 2) return texture(b_depth2, st).r;
    return texture(b_depth3, st).r;
}

// How much projector k lights this rock point: 0 outside its image or behind nearer rock,
// rising to 1 over ramp_px pixels from its image's edge.
float edge_weight(int k) {
    vec3 x = (b_view[k] * vec4(v_world, 1.0)).xyz;
    if (x.z <= 0.0) return 0.0;
    vec2 px = b_k[k].xy * x.xy / x.z + b_k[k].zw;
    vec2 from_edge = min(px + 0.5, b_size[k] - 0.5 - px);
    float d = min(from_edge.x, from_edge.y);
    if (d <= 0.0) return 0.0;
    vec2 st = (px + 0.5) / b_size[k];
    float nearest = depth_of(k, vec2(st.x, 1.0 - st.y));  // the map was drawn: its rows run bottom to top
    if (x.z > nearest + 0.005 + 0.002 * x.z) return 0.0;  // another part of the rock is in front
    return clamp(d / ramp_px, 0.0, 1.0);
}
#endif

void main() {
    vec4 c = flatten * vec4(v_world, 1.0);
    vec2 uv = 0.5 * c.xy / c.w + 0.5;  // NDC y up and texture rows bottom to top agree: no flip
    bool inside = c.w > 0.0 && all(greaterThanEqual(uv, vec2(0.0))) && all(lessThanEqual(uv, vec2(1.0)));
    vec3 colour = inside ? texture(picture, uv).rgb : vec3(0.0);
#if defined BLEND
    {
        float total = 0.0, mine = 0.0;
        for (int k = 0; k < 4; k++) {
            if (k >= blend_n) break;
            float e = edge_weight(k);
            total += e;
            if (k == self_index) mine = e;
        }
        // a point this projector reaches while the others' maps say no one does keeps full light
        float share = total > 0.0 ? mine / total : 1.0;
        colour *= pow(share, 1.0 / gamma);
    }
#endif
    f_color = vec4(colour, 1.0);
}

#endif
