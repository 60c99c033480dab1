"""acsim: snncc's accumulate-only simulator.

The pieces, in the order a model meets them: ``fixedpoint`` (Lava 0.10.0's
``fixed_pt`` Dense, Conv and LIF, bit-exact) over ``kernels`` (the compiled
synapse and neuron); ``chain`` (a Lava-timed chain runner, the oracle tests'
and benchmarks' counterpart of a Lava network); ``program``, ``datapath``,
``simulator`` and ``hardware`` (a whole quantized graph: prepare, run, count);
``costs`` (latency and energy) and ``artifact`` (the ``.acsim`` file).
"""

from snncc.backends.acsim.chain import (
    ConvSpec,
    DenseSpec,
    FixedPointChain,
    LifSpec,
    SynapseDelay,
)
from snncc.backends.acsim.fixedpoint import (
    ConvWeights,
    DenseWeights,
    SignMode,
    conv_accumulate,
    dense_accumulate,
    dense_accumulate_graded,
    lif_step,
    prepare_conv_weights,
    prepare_dense_weights,
)

__all__ = [
    "ConvSpec",
    "ConvWeights",
    "DenseSpec",
    "DenseWeights",
    "FixedPointChain",
    "LifSpec",
    "SignMode",
    "SynapseDelay",
    "conv_accumulate",
    "dense_accumulate",
    "dense_accumulate_graded",
    "lif_step",
    "prepare_conv_weights",
    "prepare_dense_weights",
]
