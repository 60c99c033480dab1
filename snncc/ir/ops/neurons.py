"""Spiking neurons: the only ops that carry state from one time step to the next.

Reference semantics follow SpikingJelly 0.0.0.0.14 operation for operation
(charge, fire on `v >= v_threshold`, hard or soft reset; v starts at v_reset,
or 0 for soft reset), so the interpreter's spikes equal the trained model's bit
for bit. Input and output are [T, ...]: axis 0 is time.

``strict=True`` fires on `v > v_threshold` instead: what NIR's neurons (and
snnTorch, Norse and Lava's fixed-point LIF) do. A NIR file's neurons import with
it, so their spikes equal the exporting library's where v lands exactly on the
threshold (integer weights and inputs make that common).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import ConfigDict, Field

from snncc.ir.op import Attrs, Cost, InferContext, OpDef, Temporal, register_op
from snncc.ir.types import Layout, TensorType, spike_type


class NeuronAttrs(Attrs):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    v_threshold: float = 1.0
    v_reset: float | None = 0.0  # None: soft reset (subtract the threshold)
    strict: bool = False  # fire on v > v_threshold (NIR, Lava), not v >= (SpikingJelly)


class LIFAttrs(NeuronAttrs):
    tau: float = Field(default=2.0, gt=0)  # SpikingJelly divides by it
    decay_input: bool = True


class PLIFAttrs(NeuronAttrs):
    w: float  # trained; leak factor sigmoid(w) = 1 / tau
    decay_input: bool = True


def _lif_charge(v: torch.Tensor, x: torch.Tensor, a: LIFAttrs) -> torch.Tensor:
    vr = a.v_reset
    if a.decay_input:
        if vr is None or vr == 0.0:
            return v + (x - v) / a.tau
        return v + (x - (v - vr)) / a.tau
    if vr is None or vr == 0.0:
        return v * (1.0 - 1.0 / a.tau) + x
    return v - (v - vr) / a.tau + x


def _plif_charge(v: torch.Tensor, x: torch.Tensor, a: PLIFAttrs) -> torch.Tensor:
    k = torch.sigmoid(torch.tensor(a.w, dtype=x.dtype))
    vr = a.v_reset
    if a.decay_input:
        if vr is None or vr == 0.0:
            return v + (x - v) * k
        return v + (x - (v - vr)) * k
    if vr is None or vr == 0.0:
        return v * (1.0 - k) + x
    return v - (v - vr) * k + x


def _if_charge(v: torch.Tensor, x: torch.Tensor, a: NeuronAttrs) -> torch.Tensor:
    return v + x


def fire(v: torch.Tensor, a: NeuronAttrs) -> tuple[torch.Tensor, torch.Tensor]:
    """(spikes, membrane after the reset) of the charged membrane ``v``."""
    s = (v > a.v_threshold if a.strict else v >= a.v_threshold).to(v.dtype)
    v = v - s * a.v_threshold if a.v_reset is None else (1.0 - s) * v + s * a.v_reset
    return s, v


def run_neuron(
    x_seq: torch.Tensor,
    a: NeuronAttrs,
    charge: Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor],
    steps: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a neuron over the time axis; returns (spikes [T, ...], membrane after each step).

    With `steps`, only those steps are computed; at the others the neuron emits
    nothing and keeps its state (the prune-timesteps pass proves that exact)."""
    v = torch.full_like(x_seq[0], a.v_reset or 0.0)
    spikes, vs = [], []
    active = set(range(x_seq.shape[0])) if steps is None else set(steps)
    for t in range(x_seq.shape[0]):
        if t not in active:
            spikes.append(torch.zeros_like(v))
            vs.append(v)
            continue
        s, v = fire(charge(v, x_seq[t], a), a)
        spikes.append(s)
        vs.append(v)
    return torch.stack(spikes), torch.stack(vs)


class _Neuron(OpDef):
    attrs_type: ClassVar[type[Attrs]] = NeuronAttrs
    is_neuron = True

    @classmethod
    def temporal(cls, attrs: Attrs, ins: list[TensorType]) -> Temporal:
        return Temporal.STATEFUL

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        x = ins[0]
        if x.layout != Layout.TIME:
            raise ValueError(
                f"{cls.name}: input {x.shape} has no time axis first (layout {x.layout.value});"
                " a multi-step neuron needs [T, ...]"
            )
        return spike_type(x.shape)

    @classmethod
    def cost(
        cls, attrs: Attrs, ins: list[TensorType], out: TensorType, params: dict[str, np.ndarray]
    ) -> Cost:
        return Cost(neuron_updates=out.numel)

    @classmethod
    def charge(cls, v: torch.Tensor, x: torch.Tensor, a: Attrs) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def evaluate(
        cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]
    ) -> torch.Tensor:
        assert isinstance(attrs, NeuronAttrs)
        return run_neuron(ins[0], attrs, cls.charge)[0]


@register_op
class LIF(_Neuron):
    name = "lif"
    attrs_type = LIFAttrs  # type: ignore[assignment]

    @classmethod
    def charge(cls, v: torch.Tensor, x: torch.Tensor, a: Attrs) -> torch.Tensor:
        assert isinstance(a, LIFAttrs)
        return _lif_charge(v, x, a)


@register_op
class PLIF(_Neuron):
    name = "plif"
    attrs_type = PLIFAttrs  # type: ignore[assignment]

    @classmethod
    def charge(cls, v: torch.Tensor, x: torch.Tensor, a: Attrs) -> torch.Tensor:
        assert isinstance(a, PLIFAttrs)
        return _plif_charge(v, x, a)


@register_op
class IF(_Neuron):
    name = "if"
    attrs_type = NeuronAttrs

    @classmethod
    def charge(cls, v: torch.Tensor, x: torch.Tensor, a: Attrs) -> torch.Tensor:
        assert isinstance(a, NeuronAttrs)
        return _if_charge(v, x, a)
