"""snncc: a compiler from trained spiking neural networks to neuromorphic hardware.

    import snncc
    graph = snncc.trace(model, torch.zeros(T, B, C, H, W))
    graph = snncc.load("model.pt", input_shape=(T, B, C, H, W))  # or a .snnir file
    result = snncc.check_spike_only(graph)
"""

import importlib
import warnings
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# SpikingJelly 0.0.0.0.14 warns at import that torch.jit.script is deprecated; the
# warning is about SpikingJelly's code, not the user's, and would clutter every run.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)

# The API is imported on first use (PEP 562), so `snncc.entry` (the console script)
# starts without torch and can turn a Ctrl-C during start-up into one line.
_LAZY = {
    **dict.fromkeys(("CheckResult", "CompileResult", "canonicalize", "check_spike_only",
                     "compile", "estimate", "load", "simulate"), "snncc.api"),
    "trace": "snncc.frontends.torch",
    "Graph": "snncc.ir",
}

if TYPE_CHECKING:
    from snncc.api import (
        CheckResult,
        CompileResult,
        canonicalize,
        check_spike_only,
        compile,
        estimate,
        load,
        simulate,
    )
    from snncc.frontends.torch import trace
    from snncc.ir import Graph


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'snncc' has no attribute {name!r}")


__all__ = ["CheckResult", "CompileResult", "Graph", "canonicalize", "check_spike_only", "compile",
           "estimate", "load", "simulate", "trace", "__version__"]
