"""Stateful ops that do not spike: a leaky integrator and a delay line.

Why they exist: NIR's ``LI`` and ``I`` (a readout that integrates without firing),
the synaptic current of ``CubaLIF``/``CubaLI`` (a leaky integrator in front of the
membrane), and ``Delay`` carry state across time steps but emit real values, so
they are neither neurons (``is_neuron``: spikes out) nor per-step ops. Both are
linear in their input, so a constant scale passes through them; neither is
flagged zero-preserving, because prune-timesteps reads that flag per time step
and a zero step in does not give a zero step out of an op with memory.
Input and output are [T, ...]: axis 0 is time.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import ConfigDict, Field

from snncc.ir.op import Attrs, Cost, InferContext, OpDef, Temporal, register_op
from snncc.ir.ops.neurons import check_per_neuron
from snncc.ir.types import Layout, TensorType


def _time_first(name: str, x: TensorType) -> None:
    if x.layout != Layout.TIME:
        raise ValueError(f"{name}: input {x.shape} has no time axis first (layout "
                         f"{x.layout.value}); a stateful op needs [T, ...]")


class LeakyIntegratorAttrs(Attrs):
    """``v[t] = decay * v[t-1] + x[t]``, v starting at 0: the forward-Euler step of
    ``tau dv/dt = -v + ...`` with ``decay = 1 - dt / tau`` (1 for NIR's integrator ``I``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    decay: float = Field(default=1.0)


@register_op
class LeakyIntegrator(OpDef):
    """Optional param ``decay``: one per neuron, broadcast against a step's [B, ...] (NIR's
    per-neuron time constants); given, it replaces the ``decay`` attribute."""

    name = "leaky_integrator"
    attrs_type = LeakyIntegratorAttrs
    optional_params = ("decay",)
    scale_commutes = True  # linear: LI(c x) == c LI(x)

    @classmethod
    def temporal(cls, attrs: Attrs, ins: list[TensorType]) -> Temporal:
        return Temporal.STATEFUL

    @classmethod
    def infer(cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray],
              ctx: InferContext) -> TensorType:
        _time_first(cls.name, ins[0])
        if "decay" in params:
            check_per_neuron(cls.name, "decay", params["decay"], ins[0].shape[1:], False)
        return TensorType(shape=ins[0].shape, layout=Layout.TIME)

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor],
                 ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, LeakyIntegratorAttrs)
        x_seq = ins[0]
        decay: float | torch.Tensor = params.get("decay", attrs.decay)
        v = torch.zeros_like(x_seq[0])
        out = []
        for t in range(x_seq.shape[0]):
            v = decay * v + x_seq[t]
            out.append(v)
        return torch.stack(out)

    @classmethod
    def cost(cls, attrs: Attrs, ins: list[TensorType], out: TensorType,
             params: dict[str, np.ndarray]) -> Cost:
        return Cost(neuron_updates=out.numel)


class DelayAttrs(Attrs):
    """``y[t] = x[t - steps]`` (0 for ``t < steps``): NIR's ``Delay`` of ``steps * dt``."""

    steps: int = Field(ge=0)


@register_op
class Delay(OpDef):
    name = "delay"
    attrs_type = DelayAttrs
    scale_commutes = True

    @classmethod
    def temporal(cls, attrs: Attrs, ins: list[TensorType]) -> Temporal:
        return Temporal.STATEFUL

    @classmethod
    def infer(cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray],
              ctx: InferContext) -> TensorType:
        assert isinstance(attrs, DelayAttrs)
        x = ins[0]
        _time_first(cls.name, x)
        if attrs.steps == 0:
            return x
        return x.with_(lo=min(x.lo, 0.0), hi=max(x.hi, 0.0), analog=False)

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor],
                 ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, DelayAttrs)
        x = ins[0]
        d = min(attrs.steps, x.shape[0])
        if d == 0:
            return x
        return torch.cat([torch.zeros_like(x[:d]), x[: x.shape[0] - d]])
