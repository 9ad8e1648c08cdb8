// The simulated rig (procam/rig.py): the light one projector throws on the rock, as the camera
// sees it. Each rock point the camera sees is looked up in the projector's picture through the
// projector's lens (projective texturing), unless the projector's shadow map says another
// part of the rock is nearer the projector. Light is linear: the pattern's value through the
// projector's gamma, over its black level, times the cosine of the incidence (Lambert).

#if defined VERTEX_SHADER

uniform mat4 camera;        // world -> clip of the camera
in vec3 in_position;
in vec3 in_normal;
out vec3 v_position;
out vec3 v_normal;

void main() {
    gl_Position = camera * vec4(in_position, 1.0);
    v_position = in_position;
    v_normal = in_normal;
}

#elif defined FRAGMENT_SHADER

uniform mat4 projector_view;  // world -> projector frame
uniform vec4 intrinsics;      // fx, fy, cx, cy (pixels, OpenCV's: pixel centres on integers)
uniform vec2 projector_size;  // pixels
uniform float k[5];           // distortion k1, k2, p1, p2, k3 (OpenCV's model)
uniform vec3 projector_centre;
uniform sampler2D pattern;    // what the projector shows, row 0 at the top, nearest pixels
uniform sampler2D shadow;     // the projector's distance to the rock along its axis
uniform float gamma;
uniform float black_level;    // the share of full light a projector throws showing black
uniform float bias;           // metres: the shadow test's tolerance
in vec3 v_position;
in vec3 v_normal;
out float f_light;

// The projector pixel a point in its frame lies on, through its lens distortion (per
// fragment, so exact), OpenCV's model: radial k1, k2, k3 and tangential p1, p2.
vec2 projector_pixel(vec3 x) {
    vec2 n = x.xy / x.z;
    float r2 = dot(n, n);
    float radial = 1.0 + r2 * (k[0] + r2 * (k[1] + r2 * k[4]));
    vec2 d = n * radial + vec2(2.0 * k[2] * n.x * n.y + k[3] * (r2 + 2.0 * n.x * n.x),
                               k[2] * (r2 + 2.0 * n.y * n.y) + 2.0 * k[3] * n.x * n.y);
    return intrinsics.xy * d + intrinsics.zw;
}

void main() {
    vec3 x = (projector_view * vec4(v_position, 1.0)).xyz;
    float light = 0.0;
    if (x.z > 0.0) {
        // texture row 0 is the image's top; the shadow map is the pinhole's, without the lens
        vec2 st = (projector_pixel(x) + 0.5) / projector_size;
        vec2 shadow_st = (intrinsics.xy * x.xy / x.z + intrinsics.zw + 0.5) / projector_size;
        bool inside = all(greaterThanEqual(st, vec2(0.0))) && all(lessThanEqual(st, vec2(1.0)))
                   && all(greaterThanEqual(shadow_st, vec2(0.0))) && all(lessThanEqual(shadow_st, vec2(1.0)));
        // the pattern was uploaded row 0 first (its top), the shadow map drawn (its rows bottom to top)
        if (inside && x.z <= texture(shadow, vec2(shadow_st.x, 1.0 - shadow_st.y)).r + bias) {
            float value = texture(pattern, st).r;
            vec3 to_projector = normalize(projector_centre - v_position);
            float lambert = abs(dot(normalize(v_normal), to_projector));
            light = (black_level + (1.0 - black_level) * pow(value, gamma)) * lambert;
        }
    }
    f_light = light;
}

#endif
