"""The tensor the user's forward() sees while it is traced.

A `TracedTensor` is a meta tensor (a shape and no data, so tracing costs no
arithmetic and no memory whatever the batch size) that stands for one IR value.
Every torch function called on it is routed, through `__torch_function__`, to
the active trace session, which emits IR nodes and returns new traced tensors.
Shapes are concrete, so `x.shape[:2]`, `len(x.shape)`, `x.dim() != 5`, star
unpacking and Python loops over T run as plain Python.

What the user sees may differ from the IR value by the time axis (`View`):
- FULL: the IR value itself;
- ALL: the user's code is single-step (`step_mode='s'`, `--time-steps T`) and
  sees one step, which stands for every step: the IR value has axis 0 = time;
- STEP t: step t of a time-major IR value, as `x_seq[t]` in a loop over T;
- a partial sum over steps, as `out += fc(s[t])` accumulates in such a loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

ALL = -1  # View.step for hidden time: one visible step standing for every step


@dataclass(frozen=True)
class View:
    """How a visible tensor relates to its IR value (see the module doc)."""

    step: int | None = None  # None: FULL; ALL; or a step index >= 0
    summed: frozenset[int] = frozenset()  # steps added up (a loop's accumulator)
    slab: bool = False  # step `step` kept as a length-1 time axis (`x_t.unsqueeze(0)`)

    @property
    def hides_time(self) -> bool:
        """Axis 0 of the IR value (time) is not visible to the user's code."""
        return (self.step is not None and not self.slab) or bool(self.summed)

    def describe(self) -> str:
        if self.slab:
            return f"time step {self.step} as a length-1 time axis"
        if self.summed:
            return f"the sum of time steps {sorted(self.summed)}"
        if self.step is None:
            return "a whole tensor"
        return "one time step (single-step code)" if self.step == ALL else f"time step {self.step}"


FULL = View()


class TracedTensor(torch.Tensor):
    """A meta tensor of the visible shape, bound to an IR value and a view."""

    ir_ref: str
    time_view: View
    session: ClassVar[Any] = None  # the active trace session (set while tracing)

    @staticmethod
    def make(shape: tuple[int, ...], ref: str, view: View) -> TracedTensor:
        with torch._C.DisableTorchFunctionSubclass():
            t = torch.empty(shape, device="meta").as_subclass(TracedTensor)
        t.ir_ref = ref
        t.time_view = view
        return t

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        session = TracedTensor.session
        if session is None:  # a traced tensor that escaped its trace: behave as a meta tensor
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **(kwargs or {}))
        return session.dispatch(func, list(args), dict(kwargs or {}))

    def __repr__(self, *, tensor_contents: Any = None) -> str:  # type: ignore[override]
        return f"TracedTensor(%{self.ir_ref}, shape={tuple(self.shape)}, {self.time_view.describe()})"


def func_name(func: Any) -> str:
    """The name a handler is registered under: `conv2d`, `add`, `__rsub__`, `get:shape`."""
    name = getattr(func, "__name__", None) or str(func)
    if name == "__get__":  # a property such as Tensor.shape
        owner = getattr(func, "__self__", None)
        return "get:" + str(getattr(owner, "__name__", "?"))
    return name
