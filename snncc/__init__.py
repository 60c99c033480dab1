"""snncc: a compiler from trained spiking neural networks to neuromorphic hardware.

    import snncc
    graph = snncc.trace(model, torch.zeros(T, B, C, H, W))
    graph = snncc.load("model.pt", input_shape=(T, B, C, H, W))  # or a .snnir file
    result = snncc.check_spike_only(graph)
"""

import warnings

__version__ = "0.1.0"

# SpikingJelly 0.0.0.0.14 warns at import that torch.jit.script is deprecated; the
# warning is about SpikingJelly's code, not the user's, and would clutter every run.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)

from snncc.api import (  # noqa: E402
    CheckResult,
    CompileResult,
    canonicalize,
    check_spike_only,
    compile,
    estimate,
    load,
    simulate,
)
from snncc.frontends.torch import trace  # noqa: E402
from snncc.ir import Graph  # noqa: E402

__all__ = ["CheckResult", "CompileResult", "Graph", "canonicalize", "check_spike_only", "compile",
           "estimate", "load", "simulate", "trace", "__version__"]
