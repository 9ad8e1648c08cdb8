"""A simulated projector-camera rig: the rock, its projectors and a camera, rendered offscreen.

The tests and the benchmark calibrate against it, as ``calibrate --auto --rig virtual`` does,
without a camera or a projector. It is meant to be as unkind as a venue: the camera has lens
distortion, a gamma and a gain, and sensor noise; the projectors have a gamma and a black level
that is not black; ambient light falls on everything; the rock shades and shadows itself.

"Projecting" a picture renders, for each rock point the camera sees, the light of each output
that reaches it (``shaders/rig_light.glsl``: the projector's picture looked up through its
pinhole, behind its shadow map). "Capturing" adds the ambient light, scales by the rock's
albedo and the camera's gain, encodes with the camera's gamma and adds noise, at twice the
camera's pixels averaged down (a sensor pixel integrates light over its area), then bends the
image through the camera's distortion. The depth image is the distance along the camera's axis
in millimetres, as a depth sensor reports it.
"""

from __future__ import annotations

import cv2
import moderngl
import numpy as np
import trimesh

from waterrock.procam.model import Pinhole
from waterrock.render.programs import load_program
from waterrock.render.target import standalone_context


def rough_pose(camera: Pinhole) -> Pinhole:
    """The camera with its pose as a hand calibration leaves it (about 6 cm and 3 degrees off):
    where the simulated calibrations start from."""
    turn = cv2.Rodrigues(np.radians([2.0, -2.0, 1.5]))[0]
    return Pinhole(camera.size, camera.K, turn @ camera.R, camera.t + [0.04, -0.03, 0.04], camera.dist)


def _distortion_maps(camera: Pinhole, ideal: Pinhole) -> tuple[np.ndarray, np.ndarray]:
    """For each pixel of the distorted camera image, where it lies in the ideal (pinhole)
    image ``ideal``: the maps of cv2.remap."""
    w, h = camera.size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    n = camera.undistort(np.column_stack([xx.ravel(), yy.ravel()]))
    K = ideal.K
    mx = (K[0, 0] * n[:, 0] + K[0, 2]).reshape(h, w).astype(np.float32)
    my = (K[1, 1] * n[:, 1] + K[1, 2]).reshape(h, w).astype(np.float32)
    return mx, my


class VirtualRig:
    """``show`` a picture on an output, ``grab`` the camera's grey frame, ``depth`` its depth
    image; every output not shown anything shows black."""

    def __init__(self, mesh: trimesh.Trimesh, projectors: list[Pinhole], camera: Pinhole, *,
                 gamma: float = 2.2, black_level: float = 0.01, ambient: float = 0.04, albedo: float = 0.6,
                 gain: float = 1.4, camera_gamma: float = 2.2, noise: float = 1.5, depth_noise_mm: float = 1.0,
                 supersample: int = 2, seed: int = 0, ctx: moderngl.Context | None = None):
        if not projectors:
            raise ValueError("a rig needs at least one projector")
        self.mesh, self.projectors, self.camera = mesh, list(projectors), camera
        self.gamma, self.black_level, self.ambient, self.albedo = gamma, black_level, ambient, albedo
        self.gain, self.camera_gamma, self.noise, self.depth_noise_mm = gain, camera_gamma, noise, depth_noise_mm
        self.rng = np.random.default_rng(seed)
        self._owns_ctx = ctx is None
        self.ctx = standalone_context() if ctx is None else ctx
        self.showing: dict[int, np.ndarray] = {}
        self._ideal = Pinhole(camera.size, camera.K, camera.R, camera.t)  # the camera without distortion
        self._render_cam = self._ideal.resized((camera.size[0] * supersample, camera.size[1] * supersample))
        self._maps = _distortion_maps(camera, self._ideal)
        ctx = self.ctx
        self.depth_prog = load_program(ctx, "device_depth")
        self.light_prog = load_program(ctx, "rig_light")
        v = np.ascontiguousarray(mesh.vertices, np.float32)
        n = np.ascontiguousarray(mesh.vertex_normals, np.float32)
        self._vbo = ctx.buffer(np.hstack([v, n]).astype(np.float32))
        self._ibo = ctx.buffer(np.ascontiguousarray(mesh.faces, np.int32))
        self.depth_vao = ctx.vertex_array(self.depth_prog, [(self._vbo, "3f 12x", "in_position")], self._ibo)
        self.light_vao = ctx.vertex_array(self.light_prog, [(self._vbo, "3f 3f", "in_position", "in_normal")],
                                          self._ibo)
        self._shadows = [self._depth_texture(p) for p in self.projectors]
        self._target = self._float_target(self._render_cam.size)
        self._black = [self._light(i, None) for i in range(len(self.projectors))]
        self._mask = self._rock_mask()  # where the camera sees rock, which the ambient light falls on

    # --- rendering ------------------------------------------------------------------------------

    def _near_far(self, device: Pinhole) -> tuple[float, float]:
        d = np.linalg.norm(self.mesh.bounds - device.centre, axis=1).max() + self.mesh.scale
        return 0.01, float(d) * 2.0

    def _float_target(self, size):
        colour = self.ctx.texture(size, 1, dtype="f4")
        depth = self.ctx.depth_renderbuffer(size)
        return colour, depth, self.ctx.framebuffer([colour], depth)

    def _render_depth(self, device: Pinhole, fbo) -> None:
        near, far = self._near_far(device)
        self.depth_prog["device"].write(np.ascontiguousarray(device.gl_matrix(near, far).T, np.float32))
        view = np.eye(4)
        view[:3, :3], view[:3, 3] = device.R, device.t
        self.depth_prog["device_view"].write(np.ascontiguousarray(view.T, np.float32))
        fbo.use()
        fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.ctx.disable(moderngl.CULL_FACE | moderngl.BLEND)
        self.depth_vao.render(moderngl.TRIANGLES)

    def _depth_texture(self, device: Pinhole) -> moderngl.Texture:
        colour, depth, fbo = self._float_target(device.size)
        self._render_depth(device, fbo)
        fbo.release()
        depth.release()
        colour.filter = (moderngl.NEAREST, moderngl.NEAREST)
        return colour

    def _light(self, index: int, image: np.ndarray | None) -> np.ndarray:
        """The linear light output ``index`` throws showing ``image`` (None: black), as the
        ideal camera at its supersampled size sees it; (H, W) float32."""
        p = self.projectors[index]
        w, h = p.size
        picture = np.zeros((h, w), np.uint8) if image is None else np.asarray(image)
        if picture.ndim == 3:
            picture = cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY)
        if picture.shape != (h, w) or picture.dtype != np.uint8:
            raise ValueError(f"output {index} shows {w}x{h} uint8 pictures, not {picture.shape} {picture.dtype}")
        tex = self.ctx.texture((w, h), 1, np.ascontiguousarray(picture).tobytes(), alignment=1)
        tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
        prog = self.light_prog
        near, far = self._near_far(self._render_cam)
        prog["camera"].write(np.ascontiguousarray(self._render_cam.gl_matrix(near, far).T, np.float32))
        prog["intrinsics"].value = (p.K[0, 0], p.K[1, 1], p.K[0, 2], p.K[1, 2])
        prog["projector_size"].value = (float(w), float(h))
        prog["k"].value = tuple(float(x) for x in p.dist)
        view = np.eye(4)
        view[:3, :3], view[:3, 3] = p.R, p.t
        prog["projector_view"].write(np.ascontiguousarray(view.T, np.float32))
        prog["projector_centre"].value = tuple(p.centre)
        prog["gamma"].value = self.gamma
        prog["black_level"].value = self.black_level
        prog["bias"].value = 0.002 + 0.002 * float(np.linalg.norm(p.centre - self.mesh.centroid))
        tex.use(0)
        self._shadows[index].use(1)
        prog["pattern"].value, prog["shadow"].value = 0, 1
        colour, _, fbo = self._target
        fbo.use()
        fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.ctx.disable(moderngl.CULL_FACE | moderngl.BLEND)
        self.light_vao.render(moderngl.TRIANGLES)
        tex.release()
        rw, rh = self._render_cam.size
        return np.frombuffer(colour.read(alignment=1), np.float32).reshape(rh, rw)[::-1].copy()

    def _rock_mask(self) -> np.ndarray:
        """Where the supersampled ideal camera sees rock: (H, W) bool."""
        colour, _, fbo = self._target
        self._render_depth(self._render_cam, fbo)
        rw, rh = self._render_cam.size
        return np.frombuffer(colour.read(alignment=1), np.float32).reshape(rh, rw)[::-1] > 0

    def refresh(self, index: int) -> None:
        """Take in a change of ``projectors[index]`` (a projector moved on its truss)."""
        self._shadows[index].release()
        self._shadows[index] = self._depth_texture(self.projectors[index])
        self._black[index] = self._light(index, None)

    # --- the rig as a calibration drives it -----------------------------------------------------

    def show(self, index: int, image: np.ndarray | None) -> None:
        """Output ``index`` shows ``image`` ((h, w) or (h, w, 3) uint8 of its size; None: black)."""
        if not 0 <= index < len(self.projectors):
            raise IndexError(f"no output {index}: the rig has {len(self.projectors)}")
        if image is None:
            self.showing.pop(index, None)
        else:
            self.showing[index] = np.asarray(image)

    def grab(self) -> np.ndarray:
        """The camera's grey frame of what the outputs show now: (H, W) uint8."""
        light = sum(self._light(i, self.showing[i]) if i in self.showing else self._black[i]
                    for i in range(len(self.projectors)))
        radiance = self.albedo * (self.ambient * self._mask + light)
        w, h = self.camera.size
        radiance = cv2.resize(radiance.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        radiance = cv2.remap(radiance, *self._maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        value = np.clip(self.gain * radiance, 0.0, 1.0) ** (1.0 / self.camera_gamma) * 255.0
        value = value + self.rng.normal(0.0, self.noise, value.shape)
        return np.clip(np.rint(value), 0, 255).astype(np.uint8)

    def depth(self) -> np.ndarray:
        """The depth camera's image: millimetres along its axis, 0 where it sees no rock; (H, W) uint16."""
        colour, _, fbo = self._float_target(self._ideal.size)
        self._render_depth(self._ideal, fbo)
        w, h = self._ideal.size
        z = np.frombuffer(colour.read(alignment=1), np.float32).reshape(h, w)[::-1].copy()
        for r in (fbo, colour, _):
            r.release()
        z = cv2.remap(z, *self._maps, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
        mm = z * 1000.0 + self.rng.normal(0.0, self.depth_noise_mm, z.shape) * (z > 0)
        return np.clip(np.rint(mm), 0, 65535).astype(np.uint16)

    def release(self) -> None:
        for r in (*self._shadows, *self._target, self.depth_vao, self.light_vao, self._vbo, self._ibo,
                  self.depth_prog, self.light_prog):
            r.release()
        if self._owns_ctx:
            self.ctx.release()

    def __enter__(self) -> VirtualRig:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
