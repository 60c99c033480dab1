"""Set spiking thresholds so that every layer of a model fires at a chosen rate.

Why: a model with random (untrained) weights, as the speed benchmarks use,
has degenerate firing. With the default threshold 1.0 most layers of a random
Spikingformer are silent or fire on nearly every step, and deeper layers
inherit it: a silent layer makes the next silent, a saturated one saturates
the next. Neither measures anything: an event-driven simulator does no work
on a silent network and a dense one on a saturated network, and trained
spiking networks fire at a few to a few tens of percent. So the benchmarks
first pick each neuron layer's threshold so that, on a sample input, it fires
within ``[low, high]`` (5-20 % by default).

How: one forward pass over the sample. A forward pre-hook on every neuron
module (any module with a SpikingJelly-style ``v_threshold`` attribute and a
``reset()``) receives that layer's input, which depends only on the layers
before it, whose thresholds are already set; it bisects the threshold on that
input (running the module's own ``forward``, so its dynamics are the model's,
whatever the neuron type), keeps the threshold and lets the real call go on.
The firing rate of a LIF layer falls (all but monotonically) as its threshold
rises, so bisection finds the rate ``target`` to within the bisection's
resolution. A layer whose input never reaches the range (for instance an input
that is all zeros) keeps the closest threshold found and is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LayerRate:
    """A neuron module's chosen threshold and the firing rate it gives on the sample."""

    name: str
    threshold: float
    rate: float
    in_range: bool


def neuron_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules with a ``v_threshold`` (SpikingJelly neurons), in definition order."""
    return [(n, m) for n, m in model.named_modules()
            if hasattr(m, "v_threshold") and callable(getattr(m, "reset", None))]


def set_threshold(module: nn.Module, threshold: float) -> None:
    """Set a neuron's threshold so that it survives ``reset()``: this SpikingJelly keeps
    ``v_threshold`` among the module's memories, which ``reset()`` restores to their
    reset values (``functional.reset_net`` before every forward would undo a plain set)."""
    module.v_threshold = threshold  # type: ignore[assignment]
    reset_values = getattr(module, "_memories_rv", None)
    if isinstance(reset_values, dict) and "v_threshold" in reset_values:
        reset_values["v_threshold"] = threshold


def _rate(module: nn.Module, x: torch.Tensor, threshold: float) -> float:
    set_threshold(module, threshold)
    module.reset()  # type: ignore[operator]
    rate = float(module.forward(x).float().mean())  # forward: bypasses the hooks
    module.reset()  # type: ignore[operator]
    return rate


def _bisect(module: nn.Module, x: torch.Tensor, low: float, high: float, target: float,
            iterations: int) -> tuple[float, float]:
    """The threshold (and its rate) whose rate is nearest ``target``, by bisection."""
    lo, hi = 0.0, max(float(x.abs().max()), 1e-6)
    while _rate(module, x, hi) > target and hi < 1e12:  # grow until the rate is below target
        lo, hi = hi, hi * 2
    best = (hi, _rate(module, x, hi))
    for _ in range(iterations):
        mid = (lo + hi) / 2
        r = _rate(module, x, mid)
        if abs(r - target) < abs(best[1] - target):
            best = (mid, r)
        if low <= r <= high and abs(r - target) <= (high - low) / 8:
            break
        if r > target:
            lo = mid
        else:
            hi = mid
    return best


def set_firing_rates(model: nn.Module, sample: torch.Tensor, low: float = 0.05,
                     high: float = 0.20, iterations: int = 30) -> list[LayerRate]:
    """Set every neuron module's ``v_threshold`` so that, on ``sample``, it fires at a rate
    in ``[low, high]`` (aiming at the middle); returns each layer's threshold and rate.

    The layers are set in the order the forward pass reaches them, each on the input the
    already-set layers before it give it. The model's state is reset before and after.
    """
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"need 0 <= low < high <= 1, got low={low}, high={high}")
    target = (low + high) / 2
    found: list[LayerRate] = []
    names = {id(m): n for n, m in neuron_modules(model)}
    done: set[int] = set()

    def pre_hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        if id(module) in done:  # a module called twice keeps its first threshold
            return
        th, r = _bisect(module, args[0].detach(), low, high, target, iterations)
        set_threshold(module, th)
        found.append(LayerRate(names[id(module)], th, r, low <= r <= high))
        done.add(id(module))

    handles = [m.register_forward_pre_hook(pre_hook) for _, m in neuron_modules(model)]
    try:
        _reset(model)
        with torch.no_grad():
            model(sample)
    finally:
        for h in handles:
            h.remove()
        _reset(model)
    return found


def _reset(model: nn.Module) -> None:
    for _, m in neuron_modules(model):
        m.reset()  # type: ignore[operator]
