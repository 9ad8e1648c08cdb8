"""The backend's choice, and the GPU's code path against the CPU's.

On a GPU the solver runs other forms of its loops: the neighbour loop branches instead of
gathering into a register window, there is no pair form, and the sums over all particles are
reduced on the device. Where a Vulkan device is present, if only Mesa's software rasterizer
lavapipe (.ci/run installs it), the same dam breaks run there, in a subprocess since Taichi
starts once per process, and must give the same water as on the CPU."""

import json
import subprocess
import sys

import numpy as np
import pytest

from waterrock.backend import DEVICE_TYPES, pick_vulkan_device, vulkan_devices
from waterrock.bench.cases import DamBreak
from waterrock.solver.solver import Solver

N, FRAMES = 3000, 3
# DFSPH's solves stop on a mean error, and float rounding may stop one an iteration earlier on
# one backend: a tolerance no solve meets runs each for exactly max_iterations on both
SETTINGS = {"pbf": {}, "wcsph": {}, "dfsph": {"max_iterations": 6}}
TOLERANCE = {"pbf": {}, "wcsph": {}, "dfsph": {"tolerance": 1e-12, "divergence_tolerance": 1e-12}}

RUN = """
import json, sys
import numpy as np
from waterrock.backend import init_backend
arch = init_backend("vulkan")
from waterrock.bench.cases import DamBreak
from waterrock.solver.solver import Solver
n, frames, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[5]
settings, tolerance = json.loads(sys.argv[3]), json.loads(sys.argv[4])
runs = {}
for method in settings:
    case = DamBreak(n=n, method=method, **tolerance[method])
    s = Solver(case.scene(solver=settings[method]), arch=arch)
    for _ in range(frames):
        s.step(5 * case.time_step)
    snap = s.snapshot()
    order = np.argsort(snap.ids)
    runs[method + "_x"], runs[method + "_v"] = snap.positions[order], snap.velocities[order]
np.savez(out, **runs)
print(arch)
"""


def _cpu_run(method):
    case = DamBreak(n=N, method=method, **TOLERANCE[method])
    s = Solver(case.scene(solver=SETTINGS[method]), arch="cpu")
    for _ in range(FRAMES):
        s.step(5 * case.time_step)
    snap = s.snapshot()
    order = np.argsort(snap.ids)
    return snap.positions[order], snap.velocities[order]


def test_auto_selection_passes_a_software_vulkan_device_over():
    assert pick_vulkan_device([("llvmpipe (LLVM 15.0.6, 256 bits)", "CPU")]) is None
    assert pick_vulkan_device([]) is None
    assert pick_vulkan_device([("llvmpipe", "CPU"), ("Intel(R) UHD Graphics", "integrated GPU")]) == 1
    assert pick_vulkan_device([("Intel(R) UHD Graphics", "integrated GPU"), ("NVIDIA H100", "discrete GPU")]) == 1


def test_gpu_code_path_gives_the_cpus_water(tmp_path):
    devices = vulkan_devices()
    assert all(name and kind in DEVICE_TYPES.values() for name, kind in devices)
    if not devices:
        pytest.skip("no Vulkan device here (Mesa's lavapipe, package mesa-vulkan-drivers, provides one on a CPU)")
    out = tmp_path / "vulkan.npz"
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(N), str(FRAMES), json.dumps(SETTINGS), json.dumps(TOLERANCE), str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "vulkan"  # the backend it ran on, after Taichi's banner
    if pick_vulkan_device(devices) is None:  # asked for by name, a software device runs, with a warning
        assert "a software device on the CPU" in done.stderr
    gpu = np.load(out)
    for method in SETTINGS:
        x, v = _cpu_run(method)
        speed = np.abs(v).max()
        assert speed > 0.1, method  # the column is falling
        # the same terms summed in another order: float32 rounding, grown over 15 substeps to
        # a few 1e-5 m (measured, lavapipe against the CPU); a wrong term moves water by mm
        np.testing.assert_allclose(gpu[method + "_x"], x, atol=2e-4, err_msg=method)
        np.testing.assert_allclose(gpu[method + "_v"], v, atol=0.02 * speed, err_msg=method)
