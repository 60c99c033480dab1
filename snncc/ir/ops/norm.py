"""BatchNorm in eval mode: a per-channel affine map. Canonicalization folds it
into the preceding weight op, so it never reaches hardware."""

from __future__ import annotations

import numpy as np
import torch

from snncc.ir.op import Attrs, InferContext, OpDef, register_op
from snncc.ir.types import TensorType


class BatchNormAttrs(Attrs):
    channel_axis: int  # negative: counted from the end, so leading batch/time axes do not matter
    eps: float


@register_op
class BatchNorm(OpDef):
    name = "batchnorm"
    attrs_type = BatchNormAttrs
    params = ("running_mean", "running_var")
    optional_params = ("weight", "bias")
    leading_dims_agnostic = True

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        assert isinstance(attrs, BatchNormAttrs)
        x = ins[0]
        if attrs.channel_axis >= 0 or -attrs.channel_axis > len(x.shape):
            raise ValueError(f"batchnorm: channel axis {attrs.channel_axis} invalid for {x.shape}")
        c = params["running_mean"].shape[0]
        if x.shape[attrs.channel_axis] != c:
            raise ValueError(
                f"batchnorm: {c} channels but input {x.shape} has {x.shape[attrs.channel_axis]}"
                f" on axis {attrs.channel_axis}"
            )
        return TensorType(shape=x.shape, layout=x.layout)

    @classmethod
    def evaluate(
        cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]
    ) -> torch.Tensor:
        assert isinstance(attrs, BatchNormAttrs)
        x = ins[0]
        # View as [N, C, L] (a free reshape): exactly the kernel BatchNorm1d/2d run.
        ax = x.dim() + attrs.channel_axis
        n = int(torch.tensor(x.shape[:ax]).prod()) if ax else 1
        y = torch.nn.functional.batch_norm(
            x.reshape(n, x.shape[ax], -1), params["running_mean"], params["running_var"],
            params.get("weight"), params.get("bias"), False, 0.0, attrs.eps,
        )
        return y.reshape(x.shape)
