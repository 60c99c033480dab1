"""The Lava backend: a compiled model as real Lava 0.10.0 processes.

``build(artifact, sample)`` returns the connected processes of a ``.loihi`` (or
``.acsim``) artifact for one sample, ready for a user's own Lava pipeline;
``predict`` runs samples in ``Loihi2SimCfg(select_tag='fixed_pt')``; the chain
runner (``run_lava_chain``) is the per-layer oracle of acsim's kernels. Lava
is imported lazily inside the functions, so importing snncc does not pay for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snncc.backends.lava.available import require_lava
from snncc.backends.lava.chain import LavaChainResult, run_lava_chain
from snncc.backends.lava.lowering import plan
from snncc.backends.lava.network import LavaNetwork
from snncc.backends.lava.run import LavaPredictions, predict, run_lava


def build(artifact: str | Path, sample: np.ndarray, aligned: bool = False) -> LavaNetwork:
    """The connected Lava processes of a compiled artifact for one sample ``[T, ...]``:
    its sources (input RingBuffers), every LIF by IR node (outputs: their ``s_out``),
    and sinks recording their spikes; run it with ``network.root.run(...)`` (Lava's
    clock: every layer's bias from step 0), or, with ``aligned=True``, with
    ``network.run(run_cfg)``, which switches each layer's bias on when its first input
    arrives, so each layer's window (``network.starts``) holds the time-aligned
    model's spikes."""
    from snncc.backends.lava.network import build as build_network
    from snncc.backends.registry import backend_for_file

    compiled = backend_for_file(artifact).load(artifact)
    return build_network(compiled.program, np.asarray(sample), aligned=aligned)


__all__ = ["LavaChainResult", "LavaNetwork", "LavaPredictions", "build", "plan", "predict",
           "require_lava", "run_lava", "run_lava_chain"]
