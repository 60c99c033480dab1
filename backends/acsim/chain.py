"""The reference chain runner: (Dense|Conv, LIF) layers stepped exactly as Lava steps them.

Why apart from the kernels: :mod:`.fixedpoint` says what one Dense, Conv or
LIF computes; this module says *when*, with Lava's one-step synaptic delay
(:class:`SynapseDelay`) and its order of operations within a step, so that a
chain run here equals the same chain run in Lava (``tests/test_lava_oracle.py``)
and the benchmarks can compare the two on identical networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from snncc.backends.acsim.fixedpoint import (
    I32,
    VTH_SHIFT,
    ConvWeights,
    DenseWeights,
    SignMode,
    conv_output_shape,
    conv_step,
    decay_multiplier_u,
    decay_multiplier_v,
    dense_step,
    lif_effective_bias,
    pair,
    prepare_conv_weights,
    prepare_dense_weights,
)
from snncc.backends.acsim.kernels import lif_update

# ================================================================== delay ====


class SynapseDelay:
    """The one-step synaptic latency of Lava's Dense and Conv.

    Lava's connection process first sends the buffer it computed last step,
    then computes the new one; the buffer starts at zero. ``push(new)``
    returns what the neuron receives this step and stores ``new`` for the
    next. A network of depth D thus shifts its outputs by D steps.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self._buf: I32 = np.zeros(shape, dtype=np.int32)

    def push(self, new: I32) -> I32:
        out = self._buf
        self._buf = new
        return out

    def peek(self) -> I32:
        return self._buf


# ================================================================== chain ====


@dataclass(frozen=True)
class DenseSpec:
    """A Lava Dense: ``weights`` ``[n_out, n_in]`` plus Lava's fixed-point options."""

    weights: np.ndarray
    weight_exp: int = 0
    num_weight_bits: int = 8
    sign_mode: SignMode | None = None
    num_message_bits: int = 0

    @property
    def in_shape(self) -> tuple[int, ...]:
        return (int(self.weights.shape[1]),)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (int(self.weights.shape[0]),)


@dataclass(frozen=True)
class ConvSpec:
    """A Lava Conv: ``weight`` ``(C_out, kx, ky, C_in/groups)``, input ``(W, H, C)``.

    ``weight_exp`` is passed to Lava but, like Lava's model, ignored here.
    """

    weight: np.ndarray
    input_shape: tuple[int, int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    weight_exp: int = 0
    num_message_bits: int = 0

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(int(i) for i in self.input_shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        kx, ky = int(self.weight.shape[1]), int(self.weight.shape[2])
        return conv_output_shape(
            (self.input_shape[0], self.input_shape[1], self.input_shape[2]),
            int(self.weight.shape[0]),
            (kx, ky),
            pair(self.stride),
            pair(self.padding),
            pair(self.dilation),
        )


@dataclass(frozen=True)
class LifSpec:
    """A Lava LIF's parameters (defaults are Lava's) and initial state."""

    du: int = 0
    dv: int = 0
    vth: int = 10
    bias_mant: int | np.ndarray = 0
    bias_exp: int | np.ndarray = 0
    u0: int | np.ndarray = 0
    v0: int | np.ndarray = 0


SynSpec = DenseSpec | ConvSpec


@dataclass
class _LayerState:
    """One layer's LIF state, its synapse's delay buffer and its constants."""

    u: I32
    v: I32
    delay: SynapseDelay
    mult_u: int
    mult_v: int
    bias: I32
    vth: int

    @classmethod
    def start(cls, syn: SynSpec, lif: LifSpec, n_b: int) -> _LayerState:
        shape = (n_b, *syn.out_shape)
        return cls(
            u=np.broadcast_to(np.asarray(lif.u0).astype(np.int32), shape).copy(),
            v=np.broadcast_to(np.asarray(lif.v0).astype(np.int32), shape).copy(),
            delay=SynapseDelay(shape),
            mult_u=decay_multiplier_u(lif.du),
            mult_v=decay_multiplier_v(lif.dv),
            bias=np.broadcast_to(lif_effective_bias(lif.bias_mant, lif.bias_exp), syn.out_shape),
            vth=int(lif.vth) << VTH_SHIFT,
        )


@dataclass
class ChainTrace:
    """Records ``[T, (B,) *layer_shape]`` of the layers in ``layers`` (all by
    default), in that order, and the synaptic events processed: one per
    (nonzero input, synapse) pair, summed over layers, steps and samples."""

    layers: list[int] = field(default_factory=list)
    spikes: list[np.ndarray] = field(default_factory=list)
    v: list[np.ndarray] = field(default_factory=list)
    u: list[np.ndarray] = field(default_factory=list)
    synaptic_events: int = 0


class FixedPointChain:
    """A chain of (Dense|Conv, LIF) layers run with the kernels, step for step as Lava.

    Order within one step t, for each layer: the synapse pushes its new
    accumulation (of this step's input) into its delay and the LIF receives the
    previous step's; the LIF's spikes are the next layer's input *this* step.
    A Dense after a multi-dimensional layer sees its spikes flattened in C
    order (Lava's ``OutPort.flatten``).
    """

    def __init__(self, layers: Sequence[tuple[SynSpec, LifSpec]]) -> None:
        if not layers:
            raise ValueError("a chain needs at least one layer")
        self.layers = list(layers)
        self._syn: list[DenseWeights | ConvWeights] = []
        for syn, _ in self.layers:
            if isinstance(syn, DenseSpec):
                self._syn.append(
                    prepare_dense_weights(
                        syn.weights,
                        weight_exp=syn.weight_exp,
                        num_weight_bits=syn.num_weight_bits,
                        sign_mode=syn.sign_mode,
                    )
                )
            else:
                self._syn.append(
                    prepare_conv_weights(
                        syn.weight,
                        syn.input_shape,
                        stride=syn.stride,
                        padding=syn.padding,
                        dilation=syn.dilation,
                        groups=syn.groups,
                    )
                )

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.layers[0][0].in_shape

    def run(
        self,
        inputs: ArrayLike,
        *,
        record_state: bool = True,
        record_layers: Sequence[int] | None = None,
    ) -> ChainTrace:
        """Run ``inputs`` ``[T, *in_shape]`` or ``[T, B, *in_shape]`` for T steps.

        ``record_layers`` limits what is kept (spikes, and u and v if
        ``record_state``) to some layers; negative indices count from the end.
        """
        x = np.asarray(inputs)
        n_item = len(self.in_shape)
        batched = x.ndim == n_item + 2
        if not batched:
            x = x[:, np.newaxis]
        if tuple(x.shape[2:]) != self.in_shape:
            raise ValueError(f"inputs must be [T, (B,) {self.in_shape}], got {np.shape(inputs)}")
        steps, n_b = x.shape[0], x.shape[1]
        n_layers = len(self.layers)
        recorded = (
            list(range(n_layers))
            if record_layers is None
            else sorted({int(k) % n_layers for k in record_layers})
        )
        slot = {k: i for i, k in enumerate(recorded)}
        states = [_LayerState.start(syn, lif, n_b) for syn, lif in self.layers]
        # Synapses reached per input: a constant for Dense, a table for Conv (edges reach fewer).
        fanouts: list[int | NDArray[np.int64]] = [
            prep.n_out if isinstance(prep, DenseWeights) else prep.fanout.reshape(-1) for prep in self._syn
        ]
        trace = ChainTrace(layers=recorded)
        for k in recorded:
            rec = (steps, n_b, *self.layers[k][0].out_shape)
            trace.spikes.append(np.zeros(rec, dtype=bool))
            if record_state:
                trace.v.append(np.zeros(rec, dtype=np.int32))
                trace.u.append(np.zeros(rec, dtype=np.int32))
        events = 0
        for t in range(steps):
            inp: np.ndarray = x[t]
            for k, ((syn, _), prep, st) in enumerate(zip(self.layers, self._syn, states)):
                graded = syn.num_message_bits > 0
                flat = inp.reshape(n_b, -1)
                fan = fanouts[k]
                if isinstance(fan, int):
                    events += np.count_nonzero(flat) * fan
                else:
                    # instrumentation, not the datapath: spikes per input times its reach
                    events += int(np.count_nonzero(flat, axis=0) @ fan)
                if isinstance(prep, DenseWeights):
                    new = dense_step(prep, flat, graded=graded)
                else:
                    new = conv_step(prep, inp, graded=graded)
                a_in = st.delay.push(new)
                st.u, st.v, s = lif_update(st.u, st.v, a_in, st.mult_u, st.mult_v, st.bias, st.vth)
                if k in slot:
                    i = slot[k]
                    trace.spikes[i][t] = s
                    if record_state:
                        trace.v[i][t] = st.v
                        trace.u[i][t] = st.u
                inp = s
        trace.synaptic_events = events
        if not batched:
            trace.spikes = [a[:, 0] for a in trace.spikes]
            trace.v = [a[:, 0] for a in trace.v]
            trace.u = [a[:, 0] for a in trace.u]
        return trace
