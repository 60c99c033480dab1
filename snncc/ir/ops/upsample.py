"""Nearest-neighbour upsampling (`F.interpolate(mode='nearest')`, `nn.Upsample`).

Every output element is a copy of one input element, so spikes stay spikes and
the op is structural. PyTorch picks the source index differently when given a
`size` (scale = in / out) and when given a `scale_factor` (scale = 1 / factor,
also for the output size floor(in * factor)), so the attributes keep which one
the user gave and `evaluate` calls PyTorch the same way.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from snncc.ir.op import Attrs, InferContext, OpDef, register_op
from snncc.ir.types import TensorType


class UpsampleAttrs(Attrs):
    size: tuple[int, ...]  # output size of the last len(size) axes (1 or 2)
    scale_factor: tuple[float, ...] | None = None  # what the user gave instead of a size


@register_op
class UpsampleNearest(OpDef):
    name = "upsample_nearest"
    attrs_type = UpsampleAttrs
    scale_commutes = True
    leading_dims_agnostic = True

    moves_data = True  # computes nothing: Temporal.STRUCTURAL
    zero_preserving = True
    monotone = True

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        assert isinstance(attrs, UpsampleAttrs)
        x = ins[0]
        k = len(attrs.size)
        if k not in (1, 2):
            raise ValueError(f"upsample_nearest: {k} spatial axes (1 or 2 are supported)")
        if len(x.shape) < k + 1:
            raise ValueError(f"upsample_nearest: input {x.shape} has no channel axis before "
                             f"its {k} spatial axes")
        if any(s < 1 for s in attrs.size):
            raise ValueError(f"upsample_nearest: output size {attrs.size} is empty")
        spatial = x.shape[-k:]
        if attrs.scale_factor is not None:
            sf = attrs.scale_factor
            if len(sf) != k or any(not math.isfinite(f) or f <= 0 for f in sf):
                raise ValueError(f"upsample_nearest: scale_factor {sf} for {k} spatial axes")
            want = tuple(math.floor(float(n) * f) for n, f in zip(spatial, sf))
            if want != attrs.size:
                raise ValueError(f"upsample_nearest: size {attrs.size} is not floor({spatial} "
                                 f"* {sf}) = {want}")
        return x.with_(shape=(*x.shape[:-k], *attrs.size))

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, UpsampleAttrs)
        x = ins[0]
        k = len(attrs.size)
        flat = x.reshape(1, -1, *x.shape[-k:])  # interpolate wants [N, C, *spatial]
        if attrs.scale_factor is not None:
            y = F.interpolate(flat, scale_factor=attrs.scale_factor, mode="nearest")
        else:
            y = F.interpolate(flat, size=attrs.size, mode="nearest")
        return y.reshape(*x.shape[:-k], *y.shape[-k:])


def source_indices(attrs: UpsampleAttrs, spatial: tuple[int, ...]) -> list[np.ndarray]:
    """Per spatial axis, the input index each output index copies. Found by running
    the op on a map of coordinates, so it is PyTorch's rule by construction (exact:
    the coordinates are small integers in float32). acsim gathers with these."""
    k = len(spatial)
    out: list[np.ndarray] = []
    for j in range(k):
        shape = [1] * k
        shape[j] = spatial[j]
        coords = torch.arange(spatial[j], dtype=torch.float32).reshape(shape).expand(*spatial)
        y = UpsampleNearest.evaluate(attrs, {}, [coords.reshape(1, *spatial).contiguous()])
        index: list[int | slice] = [0] * (k + 1)
        index[1 + j] = slice(None)
        out.append(y[tuple(index)].numpy().astype(np.int64))
    return out
