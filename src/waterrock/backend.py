"""The only place that calls ``ti.init``: picks cuda > vulkan > metal > cpu, or what is asked.

The choice comes from, in order: the ``arch`` argument (the CLI's ``--arch``), the ``TI_ARCH``
environment variable, then the first backend of the preference order that starts. A backend
that was asked for but cannot start is an error; a fallback during auto-selection is logged,
so an operator sees at once that the water runs on the CPU.

Vulkan can be a software rasterizer on the CPU (Mesa's lavapipe, SwiftShader), which Linux
images often install beside, or instead of, a GPU's driver. Auto-selection asks the Vulkan
loader for its devices first (vulkan_devices): with a GPU among them it points Taichi at the GPU
(TI_VISIBLE_DEVICE), with none it passes Vulkan over, since Taichi's own CPU backend runs the
solver 2 to 11 times faster than a software device (measured on 2 cores, the dam break: 4,000
particles, PBF 2.2 s against 4.9 s, DFSPH 2.1 s against 11 s; 16,000, a PBF substep 25 ms
against 219 ms). Asked for by name, Vulkan runs on whatever device there is, with a warning
where that is the CPU: the tests use lavapipe to run the GPU's code path on a machine without one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

import taichi as ti

log = logging.getLogger(__name__)

PREFERENCE = ("cuda", "vulkan", "metal", "cpu")
_ARCHES = {"cuda": "cuda", "vulkan": "vulkan", "metal": "metal", "cpu": "cpu", "x64": "cpu", "arm64": "cpu"}

_initialised: str | None = None


class BackendError(RuntimeError):
    pass


# VkPhysicalDeviceType (Vulkan 1.0, sec. 5.1): what kind of device a Vulkan implementation is
DEVICE_TYPES = {0: "other", 1: "integrated GPU", 2: "discrete GPU", 3: "virtual GPU", 4: "CPU"}


def vulkan_devices() -> list[tuple[str, str]]:
    """The Vulkan loader's physical devices as (name, type) in the loader's order, [] where
    there is no loader or no device. Only the instance-level calls of Vulkan 1.0, by ctypes:
    vkCreateInstance, vkEnumeratePhysicalDevices, vkGetPhysicalDeviceProperties."""
    path = ctypes.util.find_library("vulkan") or ctypes.util.find_library("vulkan-1")  # Windows: vulkan-1.dll
    if path is None:
        return []
    try:
        vk = ctypes.CDLL(path)
    except OSError:
        return []

    class ApplicationInfo(ctypes.Structure):
        _fields_ = [("sType", ctypes.c_int), ("pNext", ctypes.c_void_p), ("pApplicationName", ctypes.c_char_p),
                    ("applicationVersion", ctypes.c_uint32), ("pEngineName", ctypes.c_char_p),
                    ("engineVersion", ctypes.c_uint32), ("apiVersion", ctypes.c_uint32)]

    class InstanceCreateInfo(ctypes.Structure):
        _fields_ = [("sType", ctypes.c_int), ("pNext", ctypes.c_void_p), ("flags", ctypes.c_uint32),
                    ("pApplicationInfo", ctypes.POINTER(ApplicationInfo)), ("enabledLayerCount", ctypes.c_uint32),
                    ("ppEnabledLayerNames", ctypes.c_void_p), ("enabledExtensionCount", ctypes.c_uint32),
                    ("ppEnabledExtensionNames", ctypes.c_void_p)]

    app = ApplicationInfo(0, None, b"waterrock", 0, b"waterrock", 0, 1 << 22)  # Vulkan 1.0
    info = InstanceCreateInfo(1, None, 0, ctypes.pointer(app), 0, None, 0, None)
    instance = ctypes.c_void_p()
    if vk.vkCreateInstance(ctypes.byref(info), None, ctypes.byref(instance)) != 0:
        return []
    try:
        count = ctypes.c_uint32()
        vk.vkEnumeratePhysicalDevices(instance, ctypes.byref(count), None)
        handles = (ctypes.c_void_p * count.value)()
        vk.vkEnumeratePhysicalDevices(instance, ctypes.byref(count), handles)
        devices = []
        for handle in handles[: count.value]:
            # VkPhysicalDeviceProperties: 4 uint32 (API, driver, vendor, device), deviceType at
            # byte 16, deviceName[256] at 20, then about 800 bytes of limits: room for all
            props = ctypes.create_string_buffer(4096)
            vk.vkGetPhysicalDeviceProperties(ctypes.c_void_p(handle), props)
            kind = int.from_bytes(props.raw[16:20], "little")
            name = props.raw[20:276].split(b"\0", 1)[0].decode(errors="replace")
            devices.append((name, DEVICE_TYPES.get(kind, "other")))
        return devices
    finally:
        vk.vkDestroyInstance(instance, None)


def pick_vulkan_device(devices: list[tuple[str, str]]) -> int | None:
    """The index of the device auto-selection runs Vulkan on: the first discrete GPU, else the
    first other device that is not the CPU; None where every device is the CPU (a software
    rasterizer, slower than Taichi's CPU backend) or there is none."""
    gpus = [k for k, (_, kind) in enumerate(devices) if kind != "CPU"]
    discrete = [k for k in gpus if devices[k][1] == "discrete GPU"]
    return (discrete or gpus or [None])[0]


def _free_dropped_ndarrays() -> None:
    """Taichi 1.7 frees a scalar ndarray's memory when Python drops it, but never a vector's or a
    matrix's (taichi-dev/taichi#8763): a solver made anew (a live edit of the scene restarts the
    water, app/live.py) left about 200 bytes a particle behind each time. Their classes get
    the scalar one's ``__del__`` where they have none, the fix taichi-dev/taichi#8764 proposes."""
    from taichi.lang._ndarray import ScalarNdarray
    from taichi.lang.matrix import MatrixNdarray, VectorNdarray

    for cls in (VectorNdarray, MatrixNdarray):
        if "__del__" not in vars(cls):
            cls.__del__ = ScalarNdarray.__del__


def _try_init(name: str) -> bool:
    arch = getattr(ti, name)
    _free_dropped_ndarrays()
    try:
        ti.init(arch=arch, default_fp=ti.f32, offline_cache=True, log_level=ti.WARN)
    except Exception as err:  # noqa: BLE001 - Taichi raises assorted errors for a missing backend
        log.info("taichi backend %s failed to start: %s", name, err)
        return False
    # ti.init silently falls back to the CPU when the asked-for GPU backend is missing.
    got = ti.lang.impl.current_cfg().arch
    return name == "cpu" or got == arch


def init_backend(arch: str | None = None) -> str:
    """Start Taichi once per process and return the backend's name ('cuda', 'vulkan', 'metal', 'cpu')."""
    global _initialised
    # Taichi reads TI_ARCH itself and aborts on names it does not know ('cpu'): take it over.
    env_arch = os.environ.pop("TI_ARCH", None)
    wanted = arch or env_arch or None
    if wanted is not None:
        key = wanted.strip().lower()
        if key not in _ARCHES:
            raise BackendError(f"unknown Taichi backend {wanted!r}: choose one of {', '.join(PREFERENCE)}")
        wanted = _ARCHES[key]
    if _initialised is not None:
        if wanted is not None and wanted != _initialised:
            raise BackendError(f"Taichi already runs on {_initialised} in this process; cannot switch to {wanted}")
        return _initialised
    if wanted is not None:
        if not _try_init(wanted):
            raise BackendError(f"the Taichi backend {wanted!r} was asked for but could not start on this machine")
        devices = vulkan_devices() if wanted == "vulkan" else []
        if devices and pick_vulkan_device(devices) is None:
            log.warning("Vulkan runs on %s, a software device on the CPU: 2 to 11 times slower than --arch cpu",
                        devices[0][0])
        _initialised = wanted
        return wanted
    for name in PREFERENCE:
        if name == "vulkan" and not _vulkan_has_gpu():
            continue
        if _try_init(name):
            if name != PREFERENCE[0]:
                log.warning(
                    "no %s: the solver runs on Taichi's %s backend",
                    "/".join(PREFERENCE[: PREFERENCE.index(name)]),
                    name,
                )
            _initialised = name
            return name
    raise BackendError("no Taichi backend could start, not even the CPU")  # pragma: no cover


def _vulkan_has_gpu() -> bool:
    """Whether auto-selection tries Vulkan, and on which device (see the module's docstring).
    Without a loader it is left to ti.init, which reports what it finds."""
    devices = vulkan_devices()
    if not devices:
        return True
    k = pick_vulkan_device(devices)
    if k is None:
        log.warning("Vulkan offers only %s, a software device: passed over for Taichi's CPU backend",
                    ", ".join(name for name, _ in devices))
        return False
    if "TI_VISIBLE_DEVICE" not in os.environ and len(devices) > 1:
        os.environ["TI_VISIBLE_DEVICE"] = str(k)
    log.info("Vulkan device %d: %s (%s)", k, *devices[k])
    return True
