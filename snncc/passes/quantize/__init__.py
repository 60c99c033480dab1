"""quantize: map a canonical float graph to a target's fixed-point neurons and synapses.

Why this scheme (the arithmetic it rests on is Lava 0.10.0's ``fixed_pt`` LIF
and Dense, FACTS.md section 3):

**Neurons.** A SpikingJelly LIF (tau, hard reset to 0, fire on ``H >= theta``)
keeps no synaptic current: each step's input X enters the membrane once. Lava's
LIF with ``du = 4095`` keeps none either (``u = a << 6``, only this step's
input), and ``dv = 4096 / tau`` is its leak (exact for tau = 2: 2048). Then
Lava's membrane ``v`` equals ``kappa * H`` for a scale ``kappa`` if the synaptic
input is ``a = s * X`` with ``kappa = 64 * tau * s`` (``64 * s`` without
``decay_input``), the bias is ``b_eff = 64 * s * b`` and the threshold is
``vth = kappa * theta / 64``. ``s`` -- integer synaptic units per unit of float
current -- is the one free number per *current domain* (below), chosen as large
as the target's formats allow (threshold bits, bias mantissa and exponent, the
24-bit current) so that rounding a, the bias and the threshold costs a tiny
fraction of the threshold, and ``kappa * theta / 64`` is made an integer so the
thresholds differ only in Lava's strict ``>`` against SpikingJelly's ``>=``
(one least significant bit of v).

**Weights.** Each weight op gets its own exponent ``e`` and 8-bit mantissas
``m = round(W * s / 2**e)``, with e the smallest that fits (so the mantissa uses
all its bits). Mixed-sign mantissas are made even, as lava-dl's netx does, so
Lava's Dense, which drops the least significant bit of mixed-sign weights,
changes nothing. Since ``s`` does not limit the mantissa's precision, the
weight rounding (7 bits plus sign for mixed signs) is the dominant error; the
report gives it per layer.

**Current domains.** Spikingformer's residual stream is a sum of several conv
outputs; an integer add is only meaningful if all its terms share one ``s``.
Union-find over ``add``/``sub`` (and the ops that only move or sum currents)
yields the domains; every weight op of a domain keeps its own exponent.

**Counts.** A spike x spike product (attention's ``q @ k^T``) is an exact
integer count; count x spike stays exact. Where counts enter a domain (the
attention LIF reads them) ``s`` is a power of two, so the entry is a shift.
With ``s = 2**k``, ``k >= T - 1`` and ``dv = 2048`` every membrane value stays a
multiple of 64 for T steps, so Lava's truncating leak is exact and
``vth = kappa * theta / 64 - 1`` makes ``v > vth << 6`` the same test as
``v >= kappa * theta``: the attention LIF is then *bit-exact* to SpikingJelly.

**Host work.** The encoding conv (fed the analog image) runs on the host as
float MACs; its output current is rounded to the domain's integer units. The
readout (sums over tokens and time, then the head) runs on the host in float
from the integer sums, dequantized by ``s`` plus the exact float bias.

Biases travel as a *pending bias* per current value (the exact float sum of the
conv/linear biases that reached it): they become the reading LIF's
``bias_mant << bias_exp``, as on Loihi, where a synapse has no bias.

Deterministic: given the per-domain scales, everything else follows, so an
artifact stores the scales and rebuilds (and checks) the integer tensors.

The package, one step a module: :mod:`.values` (what each value is, where it
lives, its pending bias), :mod:`.domains` (current domains), :mod:`.scales`
(a scale per domain), :mod:`.integers` (mantissas, exponents and LIF
constants), :mod:`.result` (the quantized graph and its report) and
:mod:`.pipeline` (:func:`quantize`, in that order, and the ``quantize`` pass).
"""

from snncc.passes.quantize.domains import Domain, find_domains
from snncc.passes.quantize.integers import (
    NeuronQuant,
    WeightQuant,
    quantize_neuron,
    quantize_weights,
)
from snncc.passes.quantize.pipeline import (
    SpikeSimulator,
    add_spike_agreement,
    quantize,
    quantize_pass,
)
from snncc.passes.quantize.result import LayerReport, QuantizedGraph
from snncc.passes.quantize.scales import CALIBRATION_MARGIN, choose_scale
from snncc.passes.quantize.values import (
    NEURON_OPS,
    STRUCTURAL_OPS,
    WEIGHT_OPS,
    Cat,
    categorize,
    item_shape,
    item_structural,
    lead_axes,
    pending_biases,
    sum_axes,
)

__all__ = [
    "CALIBRATION_MARGIN",
    "NEURON_OPS",
    "STRUCTURAL_OPS",
    "WEIGHT_OPS",
    "Cat",
    "Domain",
    "LayerReport",
    "NeuronQuant",
    "QuantizedGraph",
    "SpikeSimulator",
    "WeightQuant",
    "add_spike_agreement",
    "categorize",
    "choose_scale",
    "find_domains",
    "item_shape",
    "item_structural",
    "lead_axes",
    "pending_biases",
    "quantize",
    "quantize_neuron",
    "quantize_pass",
    "quantize_weights",
    "sum_axes",
]
