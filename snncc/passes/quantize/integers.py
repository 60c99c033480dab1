"""The integers a chip stores, given a domain's scale: synapses and LIF constants.

Why its own module: once a domain's scale s is chosen (:mod:`.scales`), each
weight op becomes 8-bit mantissas with an exponent and each neuron becomes
Lava's LIF constants (``du, dv, vth, bias_mant << bias_exp``); this is the
deterministic step an artifact repeats to rebuild and check its integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph, Node
from snncc.ir.ops.neurons import NeuronAttrs
from snncc.passes.quantize.domains import Domain
from snncc.passes.quantize.scales import _neuron_factor
from snncc.passes.quantize.values import item_shape
from snncc.targets import NumberFormats


@dataclass
class WeightQuant:
    """A weight op's integer synapses: ``W ~= mantissa * 2**weight_exp / s``."""

    node: str
    domain: int
    weight_exp: int
    mantissa: np.ndarray  # int32, the weight's own (PyTorch) layout
    graded: bool  # fed counts (graded spikes) rather than binary spikes
    max_abs_weight: float
    max_abs_error: float  # max |W - mantissa * 2**e / s|
    mantissa_max: int  # largest |mantissa| used


@dataclass
class NeuronQuant:
    """A neuron as Lava's LIF: ``du, dv, vth, bias_mant << bias_exp``, reading ``a``."""

    node: str
    domain: int
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray  # int32, item shape
    bias_exp: int
    kappa: float  # v ~= kappa * H
    input_shift: int | None  # a = count << shift, when the neuron reads counts
    threshold_exact: bool
    decay_exact: bool
    max_abs_bias_error: float  # in units of the float bias
    notes: list[str] = field(default_factory=list)


def _mantissa_limits(fmt: NumberFormats, w: np.ndarray) -> tuple[int, int, bool]:
    """(lowest, highest, even) mantissa for a weight matrix of this sign pattern."""
    top = (1 << fmt.weight_bits) - 1
    if np.all(w >= 0):
        return 0, top, False
    if np.all(w <= 0):
        return -top, 0, False
    return -(top + 1), top - 1, True  # mixed: even values, as lava-dl netx


def quantize_weights(n: Node, d: Domain, fmt: NumberFormats, graded: bool) -> WeightQuant:
    w = np.asarray(n.params["weight"], dtype=np.float64)
    lo, hi, even = _mantissa_limits(fmt, w)
    top = max(-lo if lo < 0 else 0, hi)
    wmax = float(np.abs(w).max()) if w.size else 0.0
    s = d.scale
    if wmax == 0:
        e = 0
    else:
        e = math.ceil(math.log2(wmax * s / (top if not even else hi)))
        e = min(max(e, fmt.weight_exp_min), fmt.weight_exp_max)
    scaled = w * s / 2.0 ** e
    m = 2.0 * np.round(scaled / 2.0) if even else np.round(scaled)
    m = np.clip(m, lo, hi).astype(np.int32)
    err = float(np.abs(w - m.astype(np.float64) * 2.0 ** e / s).max()) if w.size else 0.0
    return WeightQuant(n.name, d.id, e, m, graded, wmax, err,
                       int(np.abs(m).max()) if m.size else 0)


def quantize_neuron(graph: Graph, n: Node, d: Domain, fmt: NumberFormats,
                    pb: dict[str, np.ndarray]) -> NeuronQuant:
    f, dv, decay_exact = _neuron_factor(n)
    assert isinstance(n.attrs, NeuronAttrs)
    s = d.scale
    kappa = f * s
    K = kappa * n.attrs.v_threshold
    notes: list[str] = []
    if d.exact:  # Lava fires on v > vth, and v is on the grid: v >= K/64 is v > ceil(K/64) - 1
        vth = math.floor(K / 64.0) if n.attrs.strict else math.ceil(K / 64.0) - 1
        exact = True
    else:
        vth = int(round(K / 64.0))
        exact = False
        if vth * 64.0 == K and n.attrs.strict:
            exact = True  # a strict neuron (NIR's v > v_threshold) is Lava's own comparison
        elif vth * 64.0 == K:
            notes.append("Lava fires on v > vth, SpikingJelly on H >= theta: "
                         "they differ only at equality (1 LSB)")
        else:
            notes.append(f"threshold rounded: {K / 64.0:.3f} -> {vth}")
    vth_max = (1 << fmt.threshold_bits) - 1
    if not 0 <= vth <= vth_max:
        raise SnnccError("SNN-Q005", f"threshold {vth} of %{n.name} does not fit "
                         f"{fmt.threshold_bits} bits", location=n.location())
    src = n.inputs[0]
    shape = item_shape(n)
    b = pb.get(src, np.zeros(shape))
    b_eff = 64.0 * s * np.broadcast_to(b, shape)
    mant_max = (1 << (fmt.bias_mant_bits - 1)) - 1
    exp_max = (1 << fmt.bias_exp_bits) - 1 if fmt.bias_exp_bits else 0
    bmax = float(np.abs(b_eff).max()) if b_eff.size else 0.0
    exp = 0
    while exp < exp_max and round(bmax / 2.0 ** exp) > mant_max:
        exp += 1
    mant = np.round(b_eff / 2.0 ** exp)
    if np.abs(mant).max(initial=0) > mant_max:
        raise SnnccError("SNN-Q005", f"bias of %{n.name} does not fit the "
                         f"{fmt.bias_mant_bits}-bit mantissa", location=n.location())
    berr = float(np.abs(mant * 2.0 ** exp - b_eff).max() / (64.0 * s)) if b_eff.size else 0.0
    if not decay_exact:
        notes.append(f"leak rounded: dv = {dv} for 4096/tau")
    shift = d.shift if (src not in pb and d.shift is not None) else None
    return NeuronQuant(n.name, d.id, 4095, dv, vth, mant.astype(np.int32), exp, kappa, shift,
                       exact, decay_exact, berr, notes)
