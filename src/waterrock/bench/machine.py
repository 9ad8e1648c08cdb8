"""What a benchmark ran on: CPU, cores, GPU, Taichi backend, library versions, GL renderer."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata

from waterrock.backend import vulkan_devices

PACKAGES = ("taichi", "numpy", "scipy", "moderngl", "opencv-python", "matplotlib",
            "pysplishsplash", "warp-lang")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def nvidia_gpus() -> list[str]:
    """GPU names and drivers from nvidia-smi; empty when there is none."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [ln.strip() for ln in out.splitlines() if ln.strip()]


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def gl_renderer() -> dict:
    """The OpenGL renderer a standalone (EGL) context gets here, or why there is none."""
    try:
        from waterrock.render.target import release_context, standalone_context

        ctx = standalone_context()
    except Exception as err:  # noqa: BLE001 - no EGL, no driver: recorded, not fatal
        return {"renderer": None, "error": f"{type(err).__name__}: {err}"}
    try:
        info = ctx.info
        return {"renderer": info["GL_RENDERER"], "version": info["GL_VERSION"], "vendor": info["GL_VENDOR"]}
    finally:
        release_context(ctx)


def machine_info(taichi_arch: str | None = None, with_gl: bool = True) -> dict:
    return {
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "gpus": nvidia_gpus(),
        # what Taichi's Vulkan backend may run on, a software rasterizer included
        "vulkan_devices": [f"{name} ({kind})" for name, kind in vulkan_devices()],
        "taichi_arch": taichi_arch,
        "gl": gl_renderer() if with_gl else None,
        "versions": versions(),
    }
