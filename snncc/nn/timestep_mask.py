"""Dynamic time steps: a trainable binary mask over time steps per layer.

After Datta et al. (arXiv 2311.16456): each masked layer holds one score per
time step; the forward pass lets the layer's spikes through at step t only if
score[t] > 0 (a binary mask), and the backward pass uses the gradient of
sigmoid(score) (a straight-through estimator), so the mask trains with
ordinary backprop. A regularizer on sigmoid(score) pushes towards fewer active
steps. The compiler reads `mask()` as a constant and removes the work of the
steps it disables (`prune-timesteps`).

Sharing: pass the same `TimestepMask` instance to several places (e.g. every
neuron of one block) to learn one mask per block; `insert_timestep_masks(...,
per="block")` does that for modules under a common prefix.
"""

from __future__ import annotations

import torch
from torch import nn


class TimestepMask(nn.Module):
    def __init__(self, T: int, init: float = 1.0) -> None:
        super().__init__()
        if T < 1:
            raise ValueError(f"TimestepMask needs T >= 1, got {T}")
        self.T = T
        self.score = nn.Parameter(torch.full((T,), float(init)))

    def mask(self) -> torch.Tensor:
        """The binary mask the forward pass applies, [T] of 0/1 (no gradient)."""
        return (self.score.detach() > 0).to(torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.T:
            raise ValueError(f"TimestepMask for T={self.T} got input with {x.shape[0]} steps")
        soft = torch.sigmoid(self.score)
        hard = (self.score > 0).to(x.dtype)
        m = hard + soft - soft.detach()  # forward: binary; backward: d sigmoid / d score
        return x * m.reshape(-1, *([1] * (x.dim() - 1)))


def timestep_masks(model: nn.Module) -> dict[str, TimestepMask]:
    """Every distinct mask module of `model`, by its first module path."""
    out: dict[str, TimestepMask] = {}
    seen: set[int] = set()
    for name, m in model.named_modules(remove_duplicate=False):
        if isinstance(m, TimestepMask) and id(m) not in seen:
            seen.add(id(m))
            out[name] = m
    return out


def timestep_regularizer(model: nn.Module) -> torch.Tensor:
    """Mean of sigmoid(score) over all masks and steps: differentiable, and lower
    when fewer steps are active. Add `lambda * timestep_regularizer(model)` to the loss."""
    masks = list(timestep_masks(model).values())
    if not masks:
        return torch.zeros(())
    return torch.stack([torch.sigmoid(m.score).mean() for m in masks]).mean()


def mask_report(model: nn.Module) -> dict[str, list[int]]:
    """Module path -> the current binary mask."""
    return {k: [int(v) for v in m.mask().tolist()] for k, m in timestep_masks(model).items()}


def average_timesteps(model: nn.Module) -> float:
    """Mean over masks of active steps (the paper's average time steps when every
    neuron layer carries its own mask)."""
    masks = list(timestep_masks(model).values())
    if not masks:
        raise ValueError("the model has no TimestepMask")
    return float(torch.stack([m.mask().sum() for m in masks]).mean())


def insert_timestep_masks(model: nn.Module, T: int, neuron_types: tuple[type[nn.Module], ...],
                          init: float = 1.0, per: str = "layer") -> nn.Module:
    """Wrap every neuron module as `Sequential(neuron, TimestepMask)`, in place.

    per="layer": one mask per neuron layer; per="block": one mask shared by the
    neurons under the same `block.N` prefix (others keep their own)."""
    shared: dict[str, TimestepMask] = {}
    targets = [(name, m) for name, m in model.named_modules() if isinstance(m, neuron_types)]
    for name, m in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        key = ".".join(name.split(".")[:2]) if per == "block" and name.startswith("block.") \
            else name
        mask = shared.setdefault(key, TimestepMask(T, init)) if per == "block" else \
            TimestepMask(T, init)
        setattr(parent, attr, nn.Sequential(m, mask))
    return model
