"""Projector-camera-rock calibration: structured light, the solve, the self-check.

``graycode`` makes and decodes the Gray-code patterns, ``model`` is the pinhole device that
both a camera and a projector are, ``solve`` turns correspondences and the rock into each
projector's lens and pose, ``check`` measures drift, ``rig`` is the simulated rig (a rock, its
projectors and a camera rendered offscreen) that tests and benchmarks calibrate without
hardware, and ``auto`` drives outputs and a camera through the whole sequence.
"""
