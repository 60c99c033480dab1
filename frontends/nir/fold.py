"""Per-neuron thresholds and input gains, folded into the weights that feed the layer.

Why: snncc's neuron ops (and the chip's neuron program) take one threshold and one
gain per layer, but a trained snnTorch or SpikingJelly layer may carry one per
neuron. For a neuron whose dynamics are linear below threshold and that resets to 0
(``v_leak = v_reset = 0``), dividing neuron i's membrane by its threshold changes
nothing it emits: with ``u_i = v_i * theta_0 / theta_i``, ``u_i`` integrates the
input times ``c_i = (r_i / theta_i) / (r_0 / theta_0)`` (and ``w_in_i / w_in_0`` for
a CubaLIF's synapse) and fires on ``u_i > theta_0``. So ``c_i`` goes into row i of
the Affine/Linear (or output channel i of the conv) before the layer, and the layer
keeps element 0's values for all. This is exact in real arithmetic; in float32 the
rounding of the scaled weights differs, so a spike can flip where v lands within
an ulp of the threshold.

Time constants that differ are not folded (they change the dynamics): SNN-NIR006.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from snncc.diagnostics import Location, SnnccError

FOLDED = ("v_threshold", "r", "w_in")  # the per-neuron fields a fold makes uniform
MUST_BE_ZERO = ("v_leak", "v_reset")


def _arr(node: Any, field: str) -> np.ndarray | None:
    v = getattr(node, field, None)
    return None if v is None else np.asarray(v, dtype=np.float64)


def needs_fold(node: Any) -> bool:
    """Whether the node has per-neuron thresholds or gains that differ."""
    for f in FOLDED:
        a = _arr(node, f)
        if a is not None and a.size > 1 and not np.all(a == a.reshape(-1)[0]):
            return True
    return False


def factor(node: Any, name: str) -> tuple[np.ndarray, Any]:
    """(c, node'): the per-neuron factor for the input, and a copy of ``node`` whose
    folded fields hold element 0's value everywhere. SNN-NIR006 if the neuron is not
    one a fold leaves unchanged (a leak or reset value other than 0)."""
    for f in MUST_BE_ZERO:
        a = _arr(node, f)
        if a is not None and np.any(a != 0):
            raise SnnccError(
                "SNN-NIR006", f"NIR node '{name}' has per-neuron thresholds or gains that "
                f"differ, and {f} != 0, so they cannot be folded into its input weights",
                location=Location(node=name),
                hint="export the layer with one threshold and gain for every neuron")
    c: np.ndarray = np.ones(1)
    out = copy.copy(node)
    for f in FOLDED:
        a = _arr(node, f)
        if a is None:
            continue
        ref = float(a.reshape(-1)[0])
        if ref == 0 or np.any(a == 0):
            raise SnnccError("SNN-NIR006", f"NIR node '{name}' has {f} = 0 for some neuron",
                             location=Location(node=name))
        ratio = a / ref
        c = c * (1.0 / ratio if f == "v_threshold" else ratio)
        setattr(out, f, np.full_like(a, ref))
    return c, out


def _per_step(c: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``c`` over the layer's per-step shape: NIR writes per-neuron arrays in that shape,
    or one value per channel (first axis), or one value."""
    if c.size == 1:
        return np.broadcast_to(c.reshape(()), shape)
    if c.ndim == 1 and len(shape) > 1 and c.size == shape[0]:
        return np.broadcast_to(c.reshape((-1,) + (1,) * (len(shape) - 1)), shape)
    try:
        return np.broadcast_to(c, shape)
    except ValueError:
        raise SnnccError("SNN-NIR007", f"the per-neuron parameters of NIR node '{name}' have "
                         f"shape {c.shape}, which does not fit its input {shape}",
                         location=Location(node=name)) from None


def fold_into(params: dict[str, np.ndarray], c: np.ndarray, channel_axis: int,
              shape: tuple[int, ...], name: str) -> dict[str, np.ndarray]:
    """The weight op's params with output channel i scaled by ``c_i``; ``shape`` is the
    layer's per-step shape, over which ``c`` must vary along the channel axis only."""
    full = _per_step(c, shape, name)
    axis = len(shape) + channel_axis
    moved = np.moveaxis(full, axis, 0).reshape(shape[axis], -1)
    if not np.all(moved == moved[:, :1]):
        raise SnnccError("SNN-NIR006", f"the per-neuron thresholds or gains of NIR node "
                         f"'{name}' differ within a channel; only per-channel values fold "
                         "into a conv", location=Location(node=name))
    per_channel = moved[:, 0]
    out = dict(params)
    w = params["weight"].astype(np.float64)
    out["weight"] = (w * per_channel.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
    if "bias" in params:
        out["bias"] = (params["bias"].astype(np.float64) * per_channel).astype(np.float32)
    return out
