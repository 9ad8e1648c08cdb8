// The distance along a device's optical axis to the rock (procam/rig.py's depth camera and
// projector shadow maps; render/onrock.py's blend between projectors). 0 where no rock is.

#if defined VERTEX_SHADER

uniform mat4 device;        // world -> clip (Pinhole.gl_matrix)
uniform mat4 device_view;   // world -> device frame (R, t)
in vec3 in_position;
out float v_depth;

void main() {
    gl_Position = device * vec4(in_position, 1.0);
    v_depth = (device_view * vec4(in_position, 1.0)).z;
}

#elif defined FRAGMENT_SHADER

in float v_depth;
out float f_depth;

void main() {
    f_depth = v_depth;
}

#endif
