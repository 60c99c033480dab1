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

Time constants that differ are not folded (they change the dynamics; snncc's neuron ops
take them per neuron, :mod:`.discretize`), but they enter the input gain ``r dt / tau``:
what must agree across the layer, and is folded where it does not, is ``r / tau`` (and
``w_in / tau_syn``), to within ``GAIN_TOLERANCE``. snnTorch's per-neuron ``beta`` writes
``r = tau / dt``, a gain of 1 for every neuron: nothing to fold.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from snncc.diagnostics import Location, SnnccError

FOLDED = ("v_threshold", "r", "w_in")  # the per-neuron fields a fold makes uniform
MUST_BE_ZERO = ("v_leak", "v_reset")
GAIN_TOLERANCE = 1e-6  # relative: float32 files round tau and r (the discretization's)
TIME_CONSTANT = {"r": ("tau", "tau_mem"), "w_in": ("tau_syn",)}  # a gain's time constant


def _arr(node: Any, field: str) -> np.ndarray | None:
    v = getattr(node, field, None)
    return None if v is None else np.asarray(v, dtype=np.float64)


def _tau(node: Any, field: str) -> np.ndarray | None:
    """The finite time constants (per neuron) that divide gain ``field``; None if none."""
    for t in TIME_CONSTANT.get(field, ()):
        tau = _arr(node, t)
        if tau is not None:
            return tau if np.all(np.isfinite(tau)) and np.all(tau > 0) else None
    return None


def _effective(node: Any, field: str) -> np.ndarray | None:
    """What must agree across the layer: the threshold, or a gain over its time constant."""
    a = _arr(node, field)
    tau = _tau(node, field)
    return a if a is None or tau is None else a / tau


def _differs(node: Any, field: str) -> bool:
    a = _effective(node, field)
    if a is None or a.size <= 1:
        return False
    ref = a.reshape(-1)[0]
    if field == "v_threshold" or not np.isfinite(ref) or ref == 0:
        return not np.all(a == ref)
    return not np.all(np.abs(a / ref - 1.0) <= GAIN_TOLERANCE)


def needs_fold(node: Any) -> bool:
    """Whether the node has per-neuron thresholds or input gains that differ."""
    return any(_differs(node, f) for f in FOLDED)


def factor(node: Any, name: str) -> tuple[np.ndarray, Any]:
    """(c, node'): the per-neuron factor for the input, and a copy of ``node`` whose
    folded fields hold element 0's value everywhere (a gain whose time constants differ:
    the value that gives element 0's ``gain / tau``). SNN-NIR006 if the neuron is not
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
        a, eff = _arr(node, f), _effective(node, f)
        if a is None or eff is None:
            continue
        ref = float(eff.reshape(-1)[0])
        if ref == 0 or np.any(eff == 0):
            raise SnnccError("SNN-NIR006", f"NIR node '{name}' has {f} = 0 for some neuron",
                             location=Location(node=name))
        ratio = eff / ref
        c = c * (1.0 / ratio if f == "v_threshold" else ratio)
        tau = _tau(node, f)
        same_tau = tau is None or np.all(tau == tau.reshape(-1)[0])
        setattr(out, f, np.full_like(a, float(a.reshape(-1)[0])) if same_tau else a / ratio)
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
