"""Graph inputs. Their type is given, not inferred: the model's encoding input
is ANALOG_INPUT unless the user says it carries spikes."""

from __future__ import annotations

import numpy as np
import torch

from snncc.ir.op import Attrs, InferContext, OpDef, register_op
from snncc.ir.types import Layout, TensorType


class InputAttrs(Attrs):
    index: int
    shape: tuple[int, ...]
    spikes: bool = False  # the input is already binary (event data), not an analog image
    time_first: bool = True


@register_op
class Input(OpDef):
    name = "input"
    attrs_type = InputAttrs
    num_inputs = 0

    moves_data = True  # computes nothing: Temporal.STRUCTURAL

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        assert isinstance(attrs, InputAttrs)
        layout = Layout.TIME if attrs.time_first else Layout.STATIC
        if attrs.spikes:
            return TensorType(shape=attrs.shape, lo=0, hi=1, integer=True, layout=layout)
        return TensorType(shape=attrs.shape, analog=True, layout=layout)

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        raise RuntimeError("inputs are bound by the interpreter, not evaluated")
