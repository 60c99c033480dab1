"""torch.fx tracing with spiking neurons kept as leaves.

`torch.fx.symbolic_trace` cannot step into a SpikingJelly neuron (its Python
loop over time needs concrete sizes), so neurons are leaves: the tracer records
one call per neuron module and the converter maps it to an IR neuron. Which
modules are leaves is an explicit, extendable policy (`register_leaf`), as in
fx's own `Tracer.is_leaf_module`.
"""

from __future__ import annotations

import torch
import torch.fx as fx

from snncc.diagnostics import Location, SnnccError

_EXTRA_LEAVES: list[type[torch.nn.Module]] = []


def register_leaf(cls: type[torch.nn.Module]) -> None:
    """Treat instances of `cls` as opaque calls (a user's own neuron class)."""
    if cls not in _EXTRA_LEAVES:
        _EXTRA_LEAVES.append(cls)


def neuron_base_classes() -> tuple[type[torch.nn.Module], ...]:
    """SpikingJelly's neuron base classes (both the clock_driven and activation_based APIs)."""
    from spikingjelly.activation_based import neuron as ab
    from spikingjelly.clock_driven import neuron as cd

    return (cd.BaseNode, ab.BaseNode)


class SnnTracer(fx.Tracer):
    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        from snncc.frontends.torch.converters import MODULE_CONVERTERS

        if isinstance(m, neuron_base_classes() + tuple(_EXTRA_LEAVES)):
            return True
        if any(isinstance(m, cls) for cls in MODULE_CONVERTERS):
            return True
        return super().is_leaf_module(m, module_qualified_name)


def trace_fx(module: torch.nn.Module) -> fx.Graph:
    """Symbolically trace `module`; a failure becomes a diagnostic, not an fx traceback."""
    try:
        return SnnTracer().trace(module)
    except Exception as e:  # fx raises many types; every one means "cannot trace this code"
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SnnccError(
            "SNN-FE001",
            f"cannot trace {type(module).__name__}.forward symbolically: {msg}",
            location=Location(module_path=""),
            hint="forward() must not branch on tensor values or iterate over tensors; "
            "move such code into a module and register it with "
            "snncc.frontends.torch.register_leaf, or rewrite it with tensor ops",
        ) from None
