"""Steering vectors: build, combine, inject (fused / folded), calibrate, save."""

from traitlens.steering.inject import POSITIONS, Steering, SteeringHandle, apply_steering
from traitlens.steering.kernels import MODES, fused_steer, reference_steer
from traitlens.steering.vector import SteeringVector, compose

__all__ = [
    "SteeringVector",
    "compose",
    "Steering",
    "SteeringHandle",
    "apply_steering",
    "fused_steer",
    "reference_steer",
    "MODES",
    "POSITIONS",
]
