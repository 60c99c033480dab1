"""A constant binary mask over time steps (dynamic time steps, Datta et al.).

`time_mask(x)[t] = x[t] * mask[t]` with mask in {0, 1}: a gate that lets a
layer's spikes through only at its trained active steps. It is not a multiply
on hardware (a step is either scheduled or not), and it is what the
`prune-timesteps` pass reads to remove work.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import field_validator

from snncc.ir.op import Attrs, InferContext, OpDef, register_op
from snncc.ir.types import Layout, TensorType


class TimeMaskAttrs(Attrs):
    mask: tuple[int, ...]

    @field_validator("mask")
    @classmethod
    def _binary(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(m not in (0, 1) for m in v):
            raise ValueError(f"a time-step mask must be binary (0 or 1 per step), got {list(v)}")
        return v


@register_op
class TimeMask(OpDef):
    name = "time_mask"
    attrs_type = TimeMaskAttrs
    scale_commutes = True
    zero_preserving = True  # x * mask, mask in {0, 1}
    monotone = True

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        assert isinstance(attrs, TimeMaskAttrs)
        x = ins[0]
        if x.layout != Layout.TIME:
            raise ValueError(f"time_mask: input {x.shape} has no time axis first")
        if len(attrs.mask) != x.shape[0]:
            raise ValueError(f"time_mask: mask has {len(attrs.mask)} steps but the input has "
                             f"T={x.shape[0]}")
        return x.with_(lo=min(x.lo, 0.0), hi=max(x.hi, 0.0), analog=False)

    @classmethod
    def evaluate(
        cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]
    ) -> torch.Tensor:
        assert isinstance(attrs, TimeMaskAttrs)
        x = ins[0]
        m = torch.tensor(attrs.mask, dtype=x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        return x * m
