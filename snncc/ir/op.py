"""The op table: one class per op, holding everything snncc knows about it.

An op definition carries its attributes (a pydantic model that rejects unknown
fields), its parameter names, its shape/kind/range rule (`infer`), its
reference semantics (`evaluate`, in torch, float32, the same arithmetic order
as SpikingJelly so spikes match bit for bit), its cost rule, and flags that
passes dispatch on (does it multiply, is it linear, how does it treat time).
Adding an op means writing one class here or in `snncc/ir/ops/` and
decorating it with :func:`register_op`; nothing else needs editing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from snncc.ir.types import Layout, TensorType


class Attrs(BaseModel):
    """Base of every op's attributes: immutable, unknown fields are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NoAttrs(Attrs):
    pass


class Temporal(str, Enum):
    PER_STEP = "per-step"  # applies independently at every time step (conv, add)
    STATEFUL = "stateful"  # carries state from one time step to the next (neurons)
    REDUCE_TIME = "reduce-time"  # reduces over the time axis (the readout's mean)
    STRUCTURAL = "structural"  # moves or relabels data, computes nothing


class Multiplies(str, Enum):
    """What kind of multiply an op performs; the spike-only check classifies these."""

    NONE = "none"
    WEIGHT = "weight"  # activation x trained weight (conv, linear)
    ACTIVATION = "activation"  # activation x activation (mul, matmul)
    SCALAR = "scalar"  # activation x constant scalar


@dataclass(frozen=True)
class InferContext:
    """Graph-level facts a type rule may need (the number of time steps)."""

    time_steps: int


@dataclass(frozen=True)
class Cost:
    """Static work of one node over all time steps, if every input were active.

    `synapses`: weight reads / accumulates a dense evaluation does (one per
    multiply-accumulate); the number of ACs is this times the input firing rate.
    `neuron_updates`: neuron state updates (neurons x time steps x batch).
    """

    synapses: int = 0
    neuron_updates: int = 0


class OpDef:
    """Base class of op definitions. Subclasses set the class variables and rules."""

    name: ClassVar[str]
    attrs_type: ClassVar[type[Attrs]] = NoAttrs
    # How many inputs a node takes; None: variadic, one or more (cat).
    num_inputs: ClassVar[int | None] = 1
    params: ClassVar[tuple[str, ...]] = ()
    optional_params: ClassVar[tuple[str, ...]] = ()
    multiplies: ClassVar[Multiplies] = Multiplies.NONE
    # f(c * x) == c * f(x) for a scalar c > 0: a constant scale may pass through.
    scale_commutes: ClassVar[bool] = False
    # Acts only on trailing axes, so any leading axes (T, B or T*B) are batch.
    leading_dims_agnostic: ClassVar[bool] = False
    is_neuron: ClassVar[bool] = False
    # A recurrent layer: a neuron whose spikes feed back into it through its own weights.
    # It spikes, but is not is_neuron: passes that rewrite neurons assume a neuron's
    # spikes depend on its input alone. Its recurrent weights are fed its own spikes.
    feeds_back: ClassVar[bool] = False
    # Moves, joins or relabels data and computes nothing (Temporal.STRUCTURAL).
    moves_data: ClassVar[bool] = False
    # A relabeling (a view): the output holds the input's elements, each exactly once,
    # in another arrangement (reshape, transpose). Implies moves_data; a repeat copies
    # elements and a cat joins inputs, so they move data but do not relabel.
    relabels: ClassVar[bool] = False
    # All-zero inputs give an all-zero output, whatever the attributes (an add, a pool, a
    # move); an op for which it depends on the attributes overrides `preserves_zero`.
    zero_preserving: ClassVar[bool] = False
    # Non-decreasing in every input (x <= y elementwise gives f(x) <= f(y)); with
    # zero_preserving, inputs <= 0 give an output <= 0 (a sub is neither: 0 - (-1) > 0).
    monotone: ClassVar[bool] = False
    # Weight ops: the output axis (from the end) that holds output channels/features.
    channel_axis: ClassVar[int | None] = None

    @classmethod
    def takes_inputs(cls, n: int) -> bool:
        """Whether a node of this op may have `n` inputs (variadic ops take one or more)."""
        return n >= 1 if cls.num_inputs is None else n == cls.num_inputs

    @classmethod
    def arity_text(cls) -> str:
        return "1 or more" if cls.num_inputs is None else str(cls.num_inputs)

    @classmethod
    def commutes_with_scale(cls, attrs: Attrs, c: float) -> bool:
        """f(c x) == c f(x) for this node's attributes and the constant c. fold-scales asks
        this, not the class flag, because for some ops it depends on both (a max only
        commutes with c > 0, a pad only when it pads with 0)."""
        return cls.scale_commutes

    @classmethod
    def preserves_zero(cls, attrs: Attrs) -> bool:
        """f(0, ..., 0) == 0 for this node's attributes; prune-timesteps asks this, not the
        class flag, because for some ops it depends on them (a pad only when it pads with 0)."""
        return cls.zero_preserving

    @classmethod
    def temporal(cls, attrs: Attrs, ins: list[TensorType]) -> Temporal:
        return Temporal.STRUCTURAL if cls.moves_data else Temporal.PER_STEP

    @classmethod
    def infer(
        cls,
        attrs: Attrs,
        ins: list[TensorType],
        params: dict[str, np.ndarray],
        ctx: InferContext,
    ) -> TensorType:
        raise NotImplementedError

    @classmethod
    def evaluate(
        cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]
    ) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def cost(
        cls, attrs: Attrs, ins: list[TensorType], out: TensorType, params: dict[str, np.ndarray]
    ) -> Cost:
        return Cost()

    @classmethod
    def split_leading(cls, attrs: Attrs, ndim: int) -> Attrs | None:
        """Attributes for this op applied to its input with axis 0 split in two
        ([T*B, ...] -> [T, B, ...]), or None if the op mixes axis 0 with others.
        Canonicalization uses it to push SpikingJelly's time-merge through."""
        return attrs if cls.leading_dims_agnostic else None


OPS: dict[str, type[OpDef]] = {}


def register_op(cls: type[OpDef]) -> type[OpDef]:
    if cls.name in OPS:
        raise ValueError(f"op {cls.name!r} registered twice")
    OPS[cls.name] = cls
    return cls


def get_op(name: str) -> type[OpDef]:
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known: {', '.join(sorted(OPS))}") from None


def same_layout(ins: list[TensorType]) -> Layout:
    return ins[0].layout
