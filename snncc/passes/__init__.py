"""Graph -> Graph passes, registered by name (see `manager.py`)."""

from snncc.passes import (  # noqa: F401  (registers)
    canonicalize,
    fold_bn_forward,
    hoist_repeat,
    merge_linear,
    prune_timesteps,
)
from snncc.passes.canonicalize import CANONICALIZE
from snncc.passes.manager import (
           PASSES,
           PassResult,
           PipelineRun,
           get_pass,
           register_pass,
           run_passes,
)

__all__ = ["CANONICALIZE", "PASSES", "PassResult", "PipelineRun", "get_pass", "register_pass",
           "run_passes"]
