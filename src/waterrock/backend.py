"""The only place that calls ``ti.init``: picks cuda > vulkan > metal > cpu, or what is asked.

The choice comes from, in order: the ``arch`` argument (the CLI's ``--arch``), the ``TI_ARCH``
environment variable, then the first backend of the preference order that starts. A backend
that was asked for but cannot start is an error; a fallback during auto-selection is logged,
so an operator sees at once that the water runs on the CPU.
"""

from __future__ import annotations

import logging
import os

import taichi as ti

log = logging.getLogger(__name__)

PREFERENCE = ("cuda", "vulkan", "metal", "cpu")
_ARCHES = {"cuda": "cuda", "vulkan": "vulkan", "metal": "metal", "cpu": "cpu", "x64": "cpu", "arm64": "cpu"}

_initialised: str | None = None


class BackendError(RuntimeError):
    pass


def _try_init(name: str) -> bool:
    arch = getattr(ti, name)
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
        _initialised = wanted
        return wanted
    for name in PREFERENCE:
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
