"""Each current domain's scale s: the largest the target's number formats allow.

Why its own module: choosing s is the one decision in quantization (given the
scales, every integer follows, :mod:`.integers`). Here are the bounds on the
currents (worst case from the weights, or observed on calibration inputs), the
neuron constants that relate s to the membrane scale, and the rule itself;
the package docstring gives the arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph, Node
from snncc.ir.ops.neurons import LIFAttrs, NeuronAttrs, PLIFAttrs
from snncc.passes.quantize.domains import Domain
from snncc.passes.quantize.values import WEIGHT_OPS, Cat, lead_axes, sum_axes
from snncc.targets import NumberFormats, Target

# Headroom on the calibrated current range: an unseen input may drive a layer harder.
CALIBRATION_MARGIN = 4.0


# What the fixed-point neuron and synapses (Lava 0.10.0 fixed_pt, which acsim
# reproduces bit for bit) can hold: a target asking for more would be quantized
# for numbers the simulator then silently truncates.
_LAVA_LIMITS: dict[str, tuple[str, int]] = {
    "weight_bits": ("<=", 8),  # Dense clips weights to 8 magnitude bits
    "u_bits": ("==", 24),
    "v_bits": ("==", 24),
    "threshold_bits": ("<=", 17),
    "threshold_shift": ("==", 6),
    "activation_shift": ("==", 6),
    "decay_bits": ("==", 12),
    "bias_mant_bits": ("<=", 16),  # bias_mant is an int16 Var
}


def _formats(target: Target) -> NumberFormats:
    """The target's number formats, checked against what Lava's fixed-point models hold."""
    if target.formats is None:
        raise SnnccError(
            "SNN-Q004", f"target '{target.name}' has no number formats to quantize for",
            hint="use a hardware target: loihi2, loihi1, loihi-calibrated, or a YAML with 'formats'",
        )
    fmt = target.formats
    wrong = [f"formats.{name} is {getattr(fmt, name)}, must be {op} {limit}"
             for name, (op, limit) in _LAVA_LIMITS.items()
             if not (getattr(fmt, name) <= limit if op == "<=" else getattr(fmt, name) == limit)]
    if wrong:
        raise SnnccError(
            "SNN-Q007", f"target '{target.name}' asks for number formats that Lava's fixed-point "
            f"neuron and synapses (which acsim reproduces) do not have: {'; '.join(wrong)}",
            hint="keep these fields at Loihi's values (see snncc/targets/loihi2.yaml)",
        )
    return fmt


def _if_leak(a: NeuronAttrs) -> tuple[float, bool]:
    return 0.0, False  # no leak, no input decay: v += x


def _lif_leak(a: NeuronAttrs) -> tuple[float, bool]:
    assert isinstance(a, LIFAttrs)
    return 1.0 / a.tau, a.decay_input


def _plif_leak(a: NeuronAttrs) -> tuple[float, bool]:
    assert isinstance(a, PLIFAttrs)
    return float(torch.sigmoid(torch.tensor(a.w, dtype=torch.float64))), a.decay_input


# The quantization rule of each neuron op, by op name: its leak per step (the fraction of
# v that decays, as Lava's du/dv over 4096) and whether the input decays with it. A neuron
# op without a rule here cannot be quantized for Lava's LIF: SNN-Q008, never an assertion.
NEURON_RULES: dict[str, Callable[[NeuronAttrs], tuple[float, bool]]] = {
    "if": _if_leak,
    "lif": _lif_leak,
    "plif": _plif_leak,
}


def _neuron_factor(n: Node) -> tuple[float, int, bool]:
    """(kappa / s, dv, decay exact) for a neuron; see the module docstring."""
    a = n.attrs
    assert isinstance(a, NeuronAttrs)
    rule = NEURON_RULES.get(n.op)
    if rule is None:
        raise SnnccError(
            "SNN-Q008",
            f"no quantization rule for op {n.op} (neuron %{n.name}): snncc knows how to map "
            f"{', '.join(sorted(NEURON_RULES))} onto Lava's fixed-point LIF",
            location=n.location(),
            hint="use an IF, LIF or PLIF neuron, or add the op's rule to NEURON_RULES in "
                 "snncc/passes/quantize/scales.py; --target ir compiles without quantizing",
        )
    if a.v_reset is None or a.v_reset != 0.0:
        raise SnnccError(
            "SNN-Q002",
            f"neuron %{n.name} has {'a soft reset' if a.v_reset is None else f'v_reset={a.v_reset}'}; "
            "Lava's LIF resets v to 0",
            location=n.location(), hint="train with v_reset=0.0 (hard reset to zero)",
        )
    leak, decay_input = rule(a)
    dv_exact = 4096.0 * leak
    dv = int(round(dv_exact))
    return (64.0 / leak if decay_input else 64.0), dv, dv == dv_exact


def _abs_row_sum_max(n: Node) -> float:
    w = np.abs(np.asarray(n.params["weight"], dtype=np.float64))
    return float(w.reshape(w.shape[0], -1).sum(axis=1).max()) if w.size else 0.0


def _current_bounds(graph: Graph, cat: dict[str, Cat]) -> dict[str, float]:
    """Worst-case |a / s| (float current without its bias) of every CURRENT node and
    count value, by interval arithmetic: used when there is no calibration."""
    bound: dict[str, float] = {}
    for n in graph:
        c = cat[n.name]
        if c == Cat.COUNT or c == Cat.SPIKE:
            bound[n.name] = max(abs(n.type.lo), abs(n.type.hi)) if math.isfinite(n.type.hi) \
                else float("inf")
        elif c == Cat.ANALOG:
            bound[n.name] = float("inf")
        elif c == Cat.CURRENT:
            ins = [bound.get(i, float("inf")) for i in n.inputs]
            if n.op in WEIGHT_OPS:
                bound[n.name] = _abs_row_sum_max(n) * ins[0]
            elif n.op in ("add", "sub"):
                bound[n.name] = ins[0] + ins[1]
            elif n.op == "cat":
                bound[n.name] = max(ins)
            elif n.op == "sum":
                src = graph.nodes[n.inputs[0]]
                dims, _ = sum_axes(n, src)
                bound[n.name] = ins[0] * math.prod(src.type.shape[d] for d in dims)
            else:
                bound[n.name] = ins[0]
    return bound


def _calibrated_bounds(graph: Graph, cat: dict[str, Cat], pb: dict[str, np.ndarray],
                       values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Observed max |X - pending bias| per CURRENT node, from the float interpreter's
    ``values`` on the calibration inputs."""
    out: dict[str, float] = {}
    for name, c in cat.items():
        if c != Cat.CURRENT or name not in values:
            continue
        v = values[name].double().numpy()
        lead = lead_axes(graph.nodes[name])
        out[name] = float(np.abs(v - pb[name][(np.newaxis,) * lead]).max()) if v.size else 0.0
    return out


def choose_scale(graph: Graph, d: Domain, fmt: NumberFormats, pb: dict[str, np.ndarray],
                 bounds: dict[str, float], margin: float) -> tuple[float, int | None, bool, str]:
    """The largest scale s the formats allow for domain ``d``; see the module docstring."""
    limits: list[tuple[float, str]] = []
    vth_max = float((1 << fmt.threshold_bits) - 1)
    mant_max = float((1 << (fmt.bias_mant_bits - 1)) - 1)
    bias_max = mant_max * float(1 << ((1 << fmt.bias_exp_bits) - 1)) if fmt.bias_exp_bits else mant_max
    u_max = float(1 << (fmt.u_bits - 1 - fmt.activation_shift))
    for r in d.readers:
        n = graph.nodes[r]
        f, _, _ = _neuron_factor(n)
        assert isinstance(n.attrs, NeuronAttrs)
        theta = n.attrs.v_threshold
        if theta > 0:
            limits.append((vth_max * 64.0 / (f * theta), f"threshold of %{r} ({fmt.threshold_bits} bits)"))
        src = n.inputs[0]
        b = float(np.abs(pb[src]).max()) if src in pb and pb[src].size else 0.0
        if b > 0:
            limits.append((bias_max / (64.0 * b), f"bias of %{r} ({fmt.bias_mant_bits}-bit mantissa)"))
        x = bounds.get(src, float("inf"))
        if x > 0 and math.isfinite(x):
            limits.append((u_max / (x * margin), f"{fmt.u_bits}-bit current into %{r}"))
    for w in d.sources:
        wmax = float(np.abs(graph.nodes[w].params["weight"]).max())
        if wmax > 0:
            top = (1 << fmt.weight_bits) - 2
            limits.append((top * 2.0 ** fmt.weight_exp_max / wmax, f"weight exponent of %{w}"))
    s, why = min(limits, default=(float(1 << 10), "no constraint"))
    if not math.isfinite(s) or s <= 0:
        s, why = 1.0, "degenerate"
    T = graph.time_steps
    if d.count_entries:
        k = int(math.floor(math.log2(s)))
        pure = not d.sources and not d.host_entries and not any(
            np.any(pb.get(x, np.zeros(1))) for x in d.nodes)
        if pure and k >= _exact_shift(graph, d, T):
            k = _exact_shift(graph, d, T)
            why = "exact integer dynamics"
        return float(2.0 ** k), k, pure and k >= _exact_shift(graph, d, T), why
    if d.readers:  # make kappa * theta / 64 an integer for the first reader
        n = graph.nodes[d.readers[0]]
        f, _, _ = _neuron_factor(n)
        assert isinstance(n.attrs, NeuronAttrs)
        theta = n.attrs.v_threshold
        if theta > 0:
            V = math.floor(f * s * theta / 64.0)
            if V >= 1:
                s = 64.0 * V / (f * theta)
    return s, None, False, why


def _exact_shift(graph: Graph, d: Domain, T: int) -> int:
    """The smallest k with s = 2**k that keeps every reader's v on the 64-grid for T steps."""
    k = 0
    for r in d.readers:
        _, dv, exact = _neuron_factor(graph.nodes[r])
        mult = 4096 - dv
        if mult == 0 or mult == 4096:
            continue
        halvings = 12 - ((mult & -mult).bit_length() - 1)  # 4096 - dv = odd * 2**(12 - halvings)
        k = max(k, halvings * (T - 1))
    return k
