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


def _lif_charge_per_neuron(v: torch.Tensor, x: torch.Tensor, a: LIFAttrs,
                           decay: torch.Tensor) -> torch.Tensor:
    """``_lif_charge`` with neuron i's ``1 - 1 / tau_i`` in ``decay`` (broadcast against a
    step's [B, ...]); for the NIR form (no input decay, reset to 0) the same arithmetic as
    the scalar path, ``v * decay + x``, so a layer whose taus agree computes the same bits."""
    vr = a.v_reset
    if a.decay_input:
        if vr is None or vr == 0.0:
            return v + (x - v) * (1.0 - decay)
        return v + (x - (v - vr)) * (1.0 - decay)
    if vr is None or vr == 0.0:
        return v * decay + x
    return v - (v - vr) * (1.0 - decay) + x


def check_per_neuron(op: str, field: str, p: np.ndarray, step_shape: tuple[int, ...],
                     below_one: bool) -> None:
    """A per-neuron parameter must broadcast against one time step's [B, ...] without
    growing it (one value per neuron, per channel as [C, 1, 1], or one for all), be
    finite, and (a membrane's ``1 - 1 / tau``, tau > 0) stay below 1."""
    try:
        fits = np.broadcast_shapes(p.shape, step_shape) == tuple(step_shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{op}: per-neuron {field} {p.shape} does not broadcast against a "
                         f"step's shape {tuple(step_shape)}")
    if not np.all(np.isfinite(p)) or (below_one and not np.all(p < 1.0)):
        raise ValueError(f"{op}: per-neuron {field} must be finite" +
                         (" and below 1 (tau > 0)" if below_one else ""))


Charge = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]


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
    def stepper(cls, attrs: Attrs, params: dict[str, torch.Tensor]) -> Charge:
        """The charge of a node with these params (a per-neuron one closes over them)."""
        return cls.charge

    @classmethod
    def evaluate(
        cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]
    ) -> torch.Tensor:
        assert isinstance(attrs, NeuronAttrs)
        return run_neuron(ins[0], attrs, cls.stepper(attrs, params))[0]


@register_op
class LIF(_Neuron):
    """Optional param ``decay``: neuron i's ``1 - 1 / tau_i``, broadcast against a step's
    [B, ...] (NIR's per-neuron time constants); given, it replaces the ``tau`` attribute."""

    name = "lif"
    attrs_type = LIFAttrs  # type: ignore[assignment]
    optional_params = ("decay",)

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        if "decay" in params:
            check_per_neuron(cls.name, "decay", params["decay"], ins[0].shape[1:], True)
        return super().infer(attrs, ins, params, ctx)

    @classmethod
    def charge(cls, v: torch.Tensor, x: torch.Tensor, a: Attrs) -> torch.Tensor:
        assert isinstance(a, LIFAttrs)
        return _lif_charge(v, x, a)

    @classmethod
    def stepper(cls, attrs: Attrs, params: dict[str, torch.Tensor]) -> Charge:
        decay = params.get("decay")
        if decay is None:
            return cls.charge
        return lambda v, x, a: _lif_charge_per_neuron(v, x, a, decay)


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
