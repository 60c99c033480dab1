"""A recurrent spiking layer: a neuron whose own spikes, through a weight matrix, feed it
at the next time step.

Why one op: snncc's graphs are acyclic and time-explicit ([T, ...] values, a stateful
op loops over T inside its reference semantics), so a loop ``neuron -> weight ->
neuron`` (NIR's recurrent edge, snnTorch's ``RLeaky``/``RSynaptic``) cannot be two
nodes. Here it is one node holding the neuron's parameters and the recurrent weight
``rec_weight`` [n, n] (and bias ``rec_bias`` [n]), acting on the last axis. At step t:

    rec_t = rec_weight @ s_{t-1} + rec_bias        (s_{-1} = 0: rec_0 is the bias)
    syn_t = synapse_decay * syn_{t-1} + x_t + rec_t  (only with a synaptic current)
    v_t   = charge(v_{t-1}, x_t + rec_t)  (or charge(v_{t-1}, syn_t)), then fire and reset

with ``charge`` the ``cell`` neuron's (``lif``, ``plif``, ``if``; :mod:`.neurons`); the
optional params ``decay`` and ``syn_decay`` are per-neuron decays, as lif's and
leaky_integrator's, replacing ``tau`` and ``synapse_decay``. The
spike of step t-1 enters at step t, NIR's convention for a recurrent edge and what
snnTorch's ``RLeaky`` computes. Floating-point order follows snnTorch: for a neuron
that adds its input (``if``, ``decay_input=False``) the recurrent current is added
after the charge, ``(beta v + x) + rec``, and a synapse computes ``(alpha syn + x) + rec``,
so the interpreter's spikes equal snnTorch's bit for bit.

The op is deliberately *not* flagged ``is_neuron``: passes that rewrite neurons (scale
through a neuron, prune time steps, lower to a chip's neuron program) assume a neuron's
spikes depend on its input alone, which a recurrent layer breaks; they see an op they do
not know and leave it, and the quantizer (acsim, Lava) refuses it by name (``SNN-Q001``).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field

from snncc.ir.op import Attrs, Cost, InferContext, OpDef, Temporal, get_op, register_op
from snncc.ir.ops.neurons import LIFAttrs, NeuronAttrs, PLIFAttrs, check_per_neuron, fire
from snncc.ir.types import Layout, TensorType, spike_type


class RecurrentAttrs(Attrs):
    """The neuron's attributes (those of ``cell``'s op) and an optional synaptic current."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    cell: Literal["lif", "plif", "if"] = "lif"
    v_threshold: float = 1.0
    v_reset: float | None = 0.0  # None: soft reset (subtract the threshold)
    strict: bool = False
    tau: float = Field(default=2.0, gt=0)  # lif only
    w: float = 0.0  # plif only: leak factor sigmoid(w)
    decay_input: bool = False  # lif, plif
    # CubaLIF's current: syn = synapse_decay * syn + x + rec, the membrane's input
    synapse_decay: float | None = None

    def neuron(self) -> NeuronAttrs:
        """The attributes of the ``cell`` op this layer steps."""
        if self.cell == "lif":
            return LIFAttrs(tau=self.tau, decay_input=self.decay_input,
                            v_threshold=self.v_threshold, v_reset=self.v_reset,
                            strict=self.strict)
        if self.cell == "plif":
            return PLIFAttrs(w=self.w, decay_input=self.decay_input,
                             v_threshold=self.v_threshold, v_reset=self.v_reset,
                             strict=self.strict)
        return NeuronAttrs(v_threshold=self.v_threshold, v_reset=self.v_reset,
                           strict=self.strict)

    @classmethod
    def of(cls, cell: str, neuron: NeuronAttrs, synapse_decay: float | None = None
           ) -> RecurrentAttrs:
        """The attributes of a recurrent ``cell`` layer whose neuron has ``neuron``."""
        extra = {k: v for k, v in neuron.model_dump().items()
                 if k in ("tau", "w", "decay_input")}
        return cls(cell=cell, v_threshold=neuron.v_threshold,  # type: ignore[arg-type]
                   v_reset=neuron.v_reset, strict=neuron.strict, synapse_decay=synapse_decay,
                   **extra)


def _adds_input(a: RecurrentAttrs) -> bool:
    """Whether the cell's charge is ``f(v) + x`` (so rec may be added after it)."""
    return a.cell == "if" or not a.decay_input


def run_recurrent(x_seq: torch.Tensor, a: RecurrentAttrs,
                  params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The layer's spikes [T, ..., n] for the input [T, ..., n] (the module docstring)."""
    inner = a.neuron()
    weight, bias = params["rec_weight"], params.get("rec_bias")
    membrane = {k: v for k, v in params.items() if k == "decay"}
    charge = get_op(a.cell).stepper(inner, membrane)  # type: ignore[attr-defined]
    syn_decay: float | torch.Tensor | None = params.get("syn_decay", a.synapse_decay)
    v = torch.full_like(x_seq[0], inner.v_reset or 0.0)
    syn = torch.zeros_like(x_seq[0])
    s = torch.zeros_like(x_seq[0])
    spikes = []
    for t in range(x_seq.shape[0]):
        rec = F.linear(s, weight, bias)
        if syn_decay is not None:
            syn = syn_decay * syn + x_seq[t] + rec
            v = charge(v, syn, inner)
        elif _adds_input(a):
            v = charge(v, x_seq[t], inner) + rec
        else:
            v = charge(v, x_seq[t] + rec, inner)
        s, v = fire(v, inner)
        spikes.append(s)
    return torch.stack(spikes)


@register_op
class Recurrent(OpDef):
    name = "recurrent"
    attrs_type: ClassVar[type[Attrs]] = RecurrentAttrs
    params = ("rec_weight",)
    # per-neuron decays (see lif's and leaky_integrator's), replacing tau / synapse_decay
    optional_params = ("rec_bias", "decay", "syn_decay")
    feeds_back = True

    @classmethod
    def temporal(cls, attrs: Attrs, ins: list[TensorType]) -> Temporal:
        return Temporal.STATEFUL

    @classmethod
    def infer(cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray],
              ctx: InferContext) -> TensorType:
        x = ins[0]
        if x.layout != Layout.TIME or len(x.shape) < 2:
            raise ValueError(f"recurrent: input {x.shape} has no time axis first (layout "
                             f"{x.layout.value}); a recurrent layer needs [T, ..., n]")
        n = x.shape[-1]
        w = params["rec_weight"]
        if w.shape != (n, n):
            raise ValueError(f"recurrent: rec_weight {w.shape} is not [{n}, {n}] for input "
                             f"{x.shape} (it maps the layer's spikes back to its input)")
        b = params.get("rec_bias")
        if b is not None and b.shape != (n,):
            raise ValueError(f"recurrent: rec_bias {b.shape} is not [{n}]")
        assert isinstance(attrs, RecurrentAttrs)
        if "decay" in params:
            if attrs.cell != "lif":
                raise ValueError(f"recurrent: a per-neuron decay needs cell 'lif', not "
                                 f"{attrs.cell!r}")
            check_per_neuron(cls.name, "decay", params["decay"], x.shape[1:], True)
        if "syn_decay" in params:
            if attrs.synapse_decay is None:
                raise ValueError("recurrent: per-neuron syn_decay without a synaptic current "
                                 "(synapse_decay is None)")
            check_per_neuron(cls.name, "syn_decay", params["syn_decay"], x.shape[1:], False)
        return spike_type(x.shape)

    @classmethod
    def cost(cls, attrs: Attrs, ins: list[TensorType], out: TensorType,
             params: dict[str, np.ndarray]) -> Cost:
        n = out.shape[-1]
        return Cost(synapses=out.numel * n, neuron_updates=out.numel)

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor],
                 ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, RecurrentAttrs)
        return run_recurrent(ins[0], attrs, params)
