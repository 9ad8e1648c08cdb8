"""The solver's vector and ndarray types, defined once for every module and kernel: a kernel
parameter annotated ``nd_vec3`` takes a 1-D ti.ndarray of vec3."""

import taichi as ti

vec2 = ti.math.vec2
vec3 = ti.math.vec3
vec4 = ti.math.vec4
ivec3 = ti.math.ivec3

nd_i32 = ti.types.ndarray(dtype=ti.i32, ndim=1)
nd_f32 = ti.types.ndarray(dtype=ti.f32, ndim=1)
nd_vec2 = ti.types.ndarray(dtype=vec2, ndim=1)
nd_vec3 = ti.types.ndarray(dtype=vec3, ndim=1)
nd_vec4 = ti.types.ndarray(dtype=vec4, ndim=1)
capsule = ti.types.vector(10, ti.f32)  # a visitor's capsule: a, b, radius, velocity (obstacles.Obstacles)
nd_capsule = ti.types.ndarray(dtype=capsule, ndim=1)
nd_ivec3 = ti.types.ndarray(dtype=ivec3, ndim=1)
nd_i32_2d = ti.types.ndarray(dtype=ti.i32, ndim=2)
nd_f32_2d = ti.types.ndarray(dtype=ti.f32, ndim=2)
nd_f32_3d = ti.types.ndarray(dtype=ti.f32, ndim=3)  # the rock's signed-distance volume
nd_any = ti.types.ndarray()  # an array of any element type and dimension, compiled for each
