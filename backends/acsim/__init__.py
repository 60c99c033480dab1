"""acsim: snncc's accumulate-only simulator.

``snncc.backends.acsim.fixedpoint`` holds the integer kernels, bit-exact to
Lava 0.10.0's ``fixed_pt`` Dense, Conv and LIF, and a reference chain runner.
"""

from snncc.backends.acsim.fixedpoint import (
    ConvSpec,
    ConvWeights,
    DenseSpec,
    DenseWeights,
    FixedPointChain,
    LifSpec,
    SignMode,
    SynapseDelay,
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
