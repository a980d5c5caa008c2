"""The steering primitive: a vector (``SteeringVector``), its one verb (``Steering(vector, alpha).attach(model)``),
the fused kernel, artifacts on disk and interop with other tools. It knows nothing of experiments."""

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
