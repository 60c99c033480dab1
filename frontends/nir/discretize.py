"""The discretization rule: a NIR neuron's continuous-time equations -> IR ops per step.

NIR stores no time step. snncc steps every neuron with **forward Euler** at the step
``dt`` (``--dt``; default: the graph's ``metadata["dt"]`` where present, else 1e-4, the
step snnTorch and SpikingJelly export with). With ``k = dt / tau``:

- ``LIF``  ``tau dv/dt = (v_leak - v) + r I``: ``v <- v + k (v_leak - v) + k r I``, fire on
  ``v > v_threshold``, then ``v <- v_reset``. In IR terms: the input times ``g = k r``
  (dropped when it is 1 to within 1e-6, as for snnTorch's ``r = tau / dt``), plus
  ``k (v_leak - v_reset)`` (dropped when 0), into ``lif(tau=1/k, decay_input=False,
  strict=True)``, which computes ``v - (v - v_reset) k + x``. For snnTorch's
  ``beta``: ``k = 1 - beta``, so this is its ``beta v + I`` exactly.
- ``LI``: the same without firing: ``leaky_integrator(decay = 1 - k)`` after the gain,
  with ``k v_leak`` added (v starts at 0).
- ``IF`` and ``I`` (no time constant): ``v <- v + r I`` per step, **not** scaled by dt.
  This is how Norse's ``IAFCell`` and snnTorch's importer read them; an Euler step of
  ``dv/dt = r I`` would scale every input by dt (1e-4) and silence the network.
- ``CubaLIF``/``CubaLI``: the synaptic current first, ``I <- I + k_syn (w_in S - I)``
  (``leaky_integrator(decay = 1 - k_syn)`` after the gain ``k_syn w_in``), then the
  membrane as ``LIF``/``LI`` reading the *updated* current, as snnTorch's ``Synaptic``.
- ``tau = inf`` (snnTorch's ``beta = 1``, with ``r = tau / dt = inf``): no leak and gain 1,
  an ``if`` neuron (or a plain integrator).
- ``Threshold``: ``lif(tau=1, decay_input=False)``, which keeps no charge: ``x > theta``.
- ``Delay``: ``delay(steps = delay / dt)``, which must be a whole number of steps.

snncc's exporter writes what NIR's equations leave open in each node's metadata, and
this rule reads it back where it agrees with the parameters: ``decay_input`` (the
membrane as ``v + (x - v) k`` with ``x = r I``, SpikingJelly's form), ``tau_steps``,
``decay`` and ``synapse_decay`` (the exact step counts), ``plif_w`` (a parametric
LIF's weight). So a round trip through NIR computes bit for bit what the graph did.

The reset is NIR's (to ``v_reset``) unless the node's ``metadata["reset_mode"]`` is
``"subtract"`` (snncc writes that for a soft-reset neuron); the comparison is NIR's
``>`` unless ``metadata["fire"]`` is ``">="`` (snncc writes that for SpikingJelly's).

Time constants that differ per neuron become the op's per-neuron ``decay`` param
(``1 - dt / tau_i``; ``lif``, ``leaky_integrator``), with the same gain and offset
steps, which must then be common to the layer. snncc's neuron ops take one threshold
and reset per layer: per-neuron thresholds and input gains that differ are folded into
the weights before the layer first (:mod:`.fold`); any other parameter array whose
entries differ is an error (``SNN-NIR006``) naming the node and the field, not a
silent average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from snncc.diagnostics import Location, SnnccError
from snncc.ir.op import Attrs
from snncc.ir.ops.elementwise import ScalarAttrs
from snncc.ir.ops.neurons import LIFAttrs, NeuronAttrs, PLIFAttrs
from snncc.ir.ops.synapses import DelayAttrs, LeakyIntegratorAttrs

DEFAULT_DT = 1e-4
GAIN_TOLERANCE = 1e-6  # float32 exports round tau / dt: a gain this close to 1 is 1


@dataclass(frozen=True)
class Step:
    """One IR op of a NIR node's discretization, applied in order to the node's input."""

    op: str
    attrs: Attrs
    role: str  # gain, offset, synapse, membrane: the suffix of the IR node's name
    params: dict[str, np.ndarray] | None = None  # per-neuron decays (``decay``)


def uniform(node: Any, name: str, field: str, *, finite: bool = True) -> float:
    """The one value of a NIR parameter array; SNN-NIR006 if its entries differ."""
    arr = np.asarray(getattr(node, field), dtype=np.float64)
    if arr.size == 0:
        raise SnnccError("SNN-NIR003", f"NIR node '{name}' has an empty {field}",
                         location=Location(node=name))
    first = float(arr.reshape(-1)[0])
    if not np.all(arr == first):
        raise SnnccError(
            "SNN-NIR006", f"NIR node '{name}' ({type(node).__name__}) has per-neuron {field} "
            f"that differ (from {arr.min():.6g} to {arr.max():.6g}); snncc's neuron ops take "
            "one value per layer", location=Location(node=name),
            hint="export the layer with one value for every neuron, or split it into layers "
                 "that each share one")
    if np.isnan(first) or (finite and not np.isfinite(first)):
        raise SnnccError("SNN-NIR003", f"NIR node '{name}' has a non-finite {field}",
                         location=Location(node=name))
    return first


def _positive(node: Any, name: str, field: str) -> float:
    x = uniform(node, name, field)
    if x <= 0:
        raise SnnccError("SNN-NIR003", f"NIR node '{name}' has {field} = {x:g}; a time "
                         "constant must be positive", location=Location(node=name))
    return x


def _meta(node: Any) -> dict[str, Any]:
    meta = getattr(node, "metadata", None)
    return dict(meta) if isinstance(meta, dict) else {}


def _meta_text(node: Any, key: str) -> str | None:
    v = _meta(node).get(key)
    if v is None:
        return None
    return bytes(v).decode("utf8") if isinstance(v, (bytes, np.bytes_)) else str(v)


def _gain(g: float) -> list[Step]:
    return [] if abs(g - 1.0) <= GAIN_TOLERANCE else [Step("scale", ScalarAttrs(value=g), "gain")]


def _offset(b: float) -> list[Step]:
    return [] if b == 0.0 else [Step("shift", ScalarAttrs(value=b), "offset")]


def _firing(node: Any, name: str) -> dict[str, Any]:
    """v_threshold, v_reset and strict of a spiking NIR node (the neuron attrs' common part)."""
    theta = uniform(node, name, "v_threshold")
    reset = _meta_text(node, "reset_mode")
    vr: float | None = uniform(node, name, "v_reset") if getattr(node, "v_reset", None) is not None \
        else 0.0
    if reset == "subtract":
        vr = None
    return {"v_threshold": theta, "v_reset": vr, "strict": _meta_text(node, "fire") != ">="}


def _differ(node: Any, field: str) -> bool:
    arr = np.asarray(getattr(node, field), dtype=np.float64)
    return arr.size > 1 and not np.all(arr == arr.reshape(-1)[0])


def _decays(node: Any, name: str, dt: float, tau_field: str,
            key: str = "decay") -> tuple[np.ndarray, np.ndarray]:
    """(k, decay): per neuron ``dt / tau`` and ``1 - dt / tau`` (the exact values snncc's
    exporter wrote in ``metadata[key]`` where they agree); SNN-NIR003 unless every tau
    is finite and positive (a layer mixing leaky and non-leaky neurons is not stepped)."""
    tau = np.asarray(getattr(node, tau_field), dtype=np.float64)
    if not np.all(np.isfinite(tau)) or not np.all(tau > 0):
        raise SnnccError("SNN-NIR003", f"NIR node '{name}' has per-neuron {tau_field} that "
                         "are not all finite and positive", location=Location(node=name),
                         hint="a time constant must be positive; a layer without leak "
                              "has tau = inf for every neuron")
    k = dt / tau
    hint = _meta(node).get(key)
    if hint is not None:
        h = np.asarray(hint, dtype=np.float64)
        if h.shape == k.shape and np.allclose(h, 1.0 - k, rtol=1e-9, atol=0.0):
            return 1.0 - h, h
    return k, 1.0 - k


def _common(values: np.ndarray, node: Any, name: str, what: str) -> float:
    """The one value of a per-neuron quantity (equal to within GAIN_TOLERANCE, relative);
    SNN-NIR006 where it differs (folding per-neuron gains, frontends/nir/fold.py, makes
    it common where the neuron allows it)."""
    ref = float(values.reshape(-1)[0])
    if np.all(np.abs(values - ref) <= GAIN_TOLERANCE * max(abs(ref), 1e-30)):
        return ref
    raise SnnccError("SNN-NIR006", f"NIR node '{name}' ({type(node).__name__}) has "
                     f"per-neuron time constants and a per-neuron {what} that differs (from "
                     f"{values.min():.6g} to {values.max():.6g}), which cannot be folded "
                     "into its input weights", location=Location(node=name),
                     hint="export the layer with v_leak = v_reset = 0, or one value of "
                          f"{what} for every neuron")


def _per_neuron(decay: np.ndarray) -> dict[str, np.ndarray]:
    return {"decay": decay.astype(np.float32)}


def _first(decay: np.ndarray) -> float:
    """Neuron 0's decay as the op's param holds it (float32): the attribute the param
    replaces is derived from it, so a graph written to NIR and read back is the same."""
    return float(decay.astype(np.float32).reshape(-1)[0])


def _membrane_per_neuron(node: Any, name: str, dt: float, tau_field: str,
                         spiking: bool) -> list[Step]:
    """:func:`_membrane` for a layer whose time constants differ: the same ops, with the
    per-neuron decays as the membrane op's ``decay`` param."""
    k, decay = _decays(node, name, dt, tau_field)
    r = np.asarray(node.r, dtype=np.float64)
    v_leak = np.asarray(node.v_leak, dtype=np.float64)
    if not spiking:
        return [*_gain(_common(k * r, node, name, "input gain r dt / tau")),
                *_offset(_common(k * v_leak, node, name, "leak offset dt / tau v_leak")),
                Step("leaky_integrator", LeakyIntegratorAttrs(decay=_first(decay)),
                     "membrane", _per_neuron(decay))]
    tau0 = 1.0 / (1.0 - _first(decay))  # the attribute the param replaces
    fire = _firing(node, name)
    rest = fire["v_reset"] if fire["v_reset"] is not None else 0.0
    if _meta_number(node, "decay_input") == 1.0:
        membrane = Step("lif", LIFAttrs(tau=tau0, decay_input=True, **fire), "membrane",
                        _per_neuron(decay))
        return [*_gain(_common(r, node, name, "r")),
                *_offset(_common(v_leak - rest, node, name, "v_leak")), membrane]
    membrane = Step("lif", LIFAttrs(tau=tau0, decay_input=False, **fire), "membrane",
                    _per_neuron(decay))
    return [*_gain(_common(k * r, node, name, "input gain r dt / tau")),
            *_offset(_common(k * (v_leak - rest), node, name, "leak offset dt / tau v_leak")),
            membrane]


def _membrane(node: Any, name: str, dt: float, tau_field: str, spiking: bool) -> list[Step]:
    if _differ(node, tau_field):
        return _membrane_per_neuron(node, name, dt, tau_field, spiking)
    tau = uniform(node, name, tau_field, finite=False)
    if tau == np.inf:  # no leak: snnTorch's beta = 1 writes tau = dt / 0 and r = tau / dt
        if uniform(node, name, "r", finite=False) != np.inf:
            raise SnnccError("SNN-NIR006", f"NIR node '{name}' has {tau_field} = inf and a "
                             "finite r: its input gain r dt / tau is 0", location=Location(node=name))
        if not spiking:
            return [Step("leaky_integrator", LeakyIntegratorAttrs(decay=1.0), "membrane")]
        return [Step("if", NeuronAttrs(**_firing(node, name)), "membrane")]
    k = dt / _positive(node, name, tau_field)
    r = uniform(node, name, "r")
    v_leak = uniform(node, name, "v_leak")
    if not spiking:
        decay = _refined(node, "decay", 1.0 - k)
        return [*_gain(k * r), *_offset(k * v_leak),
                Step("leaky_integrator", LeakyIntegratorAttrs(decay=decay), "membrane")]
    fire = _firing(node, name)
    rest = fire["v_reset"] if fire["v_reset"] is not None else 0.0
    tau_steps = _refined(node, "tau_steps", 1.0 / k)
    w = _meta_number(node, "plif_w")
    plif = w is not None and math.isclose(1.0 / (1.0 + math.exp(-w)), k, rel_tol=1e-6)
    if _meta_number(node, "decay_input") == 1.0:  # v + (x - (v - v_reset)) k, x = r I + ...
        membrane = (Step("plif", PLIFAttrs(w=w, decay_input=True, **fire), "membrane")
                    if plif and w is not None else
                    Step("lif", LIFAttrs(tau=tau_steps, decay_input=True, **fire), "membrane"))
        return [*_gain(r), *_offset(v_leak - rest), membrane]
    membrane = (Step("plif", PLIFAttrs(w=w, decay_input=False, **fire), "membrane")
                if plif and w is not None else
                Step("lif", LIFAttrs(tau=tau_steps, decay_input=False, **fire), "membrane"))
    return [*_gain(k * r), *_offset(k * (v_leak - rest)), membrane]


def _meta_number(node: Any, key: str) -> float | None:
    v = _meta(node).get(key)
    if v is None:
        return None
    try:
        x = float(np.asarray(v, dtype=np.float64).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return None
    return x if math.isfinite(x) else None


def _refined(node: Any, key: str, derived: float) -> float:
    """``derived`` (from the NIR parameters), or the exact value snncc's exporter wrote in
    the metadata where the two agree (dt / (tau dt) rounds; a stale hint is ignored)."""
    hint = _meta_number(node, key)
    return hint if hint is not None and math.isclose(hint, derived, rel_tol=1e-9) else derived


def _synapse(node: Any, name: str, dt: float) -> list[Step]:
    if _differ(node, "tau_syn"):
        ks, decays = _decays(node, name, dt, "tau_syn", "synapse_decay")
        gains = ks * np.asarray(node.w_in, dtype=np.float64)
        first = LeakyIntegratorAttrs(decay=_first(decays))
        return [*_gain(_common(gains, node, name, "synaptic gain w_in dt / tau_syn")),
                Step("leaky_integrator", first, "synapse", _per_neuron(decays))]
    k = dt / _positive(node, name, "tau_syn")
    w_in = uniform(node, name, "w_in")
    decay = _refined(node, "synapse_decay", 1.0 - k)
    return [*_gain(k * w_in),
            Step("leaky_integrator", LeakyIntegratorAttrs(decay=decay), "synapse")]


def neuron_steps(node: Any, name: str, dt: float) -> list[Step]:
    """The IR ops, in order, that step the NIR neuron (or Threshold, Delay) ``node``."""
    kind = type(node).__name__
    if kind == "LIF":
        return _membrane(node, name, dt, "tau", spiking=True)
    if kind == "LI":
        return _membrane(node, name, dt, "tau", spiking=False)
    if kind == "CubaLIF":
        return [*_synapse(node, name, dt), *_membrane(node, name, dt, "tau_mem", spiking=True)]
    if kind == "CubaLI":
        return [*_synapse(node, name, dt), *_membrane(node, name, dt, "tau_mem", spiking=False)]
    if kind == "IF":
        return [*_gain(uniform(node, name, "r")),
                Step("if", NeuronAttrs(**_firing(node, name)), "membrane")]
    if kind == "I":
        return [*_gain(uniform(node, name, "r")),
                Step("leaky_integrator", LeakyIntegratorAttrs(decay=1.0), "membrane")]
    if kind == "Threshold":
        theta = uniform(node, name, "threshold")
        return [Step("lif", LIFAttrs(tau=1.0, decay_input=False, v_threshold=theta, v_reset=0.0,
                                     strict=_meta_text(node, "fire") != ">="), "membrane")]
    if kind == "Delay":
        steps = uniform(node, name, "delay") / dt
        n = int(round(steps))
        if n < 0 or abs(steps - n) > 1e-6 * max(1.0, abs(steps)):
            raise SnnccError("SNN-NIR006", f"NIR node '{name}' delays by {steps:g} steps of "
                             f"dt={dt:g}, not a whole number", location=Location(node=name),
                             hint="give --dt that divides the delay")
        return [Step("delay", DelayAttrs(steps=n), "membrane")]
    raise AssertionError(f"neuron_steps: {kind} is not a neuron")


NEURON_TYPES = ("LIF", "LI", "CubaLIF", "CubaLI", "IF", "I", "Threshold", "Delay")
