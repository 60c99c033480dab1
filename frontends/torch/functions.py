"""The table from torch functions to IR: `HANDLERS[name](session, args, kwargs)`.

Names are what `__torch_function__` reports (`conv2d`, `add`, `__rsub__`,
`get:shape`); a method and the function of the same name share a handler,
since torch gives both the tensor first. The handlers live by family in
`fn_shapes.py` (sizes, moves, indexing, joins, time loops), `fn_layers.py`
(weight ops, normalisation, pooling, resampling) and `fn_math.py`
(arithmetic, reductions, masks); this module holds the table, argument
access, and the answers for what cannot be traced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from snncc.diagnostics import SnnccError
from snncc.frontends.torch.tensor import TracedTensor

if TYPE_CHECKING:
    from snncc.frontends.torch.session import Session

Handler = Callable[["Session", list[Any], dict[str, Any]], Any]
HANDLERS: dict[str, Handler] = {}


def handles(*names: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        for n in names:
            if n in HANDLERS:
                raise ValueError(f"torch function {n!r} handled twice")
            HANDLERS[n] = fn
        return fn

    return deco


def arg(args: list[Any], kwargs: dict[str, Any], i: int, name: str, default: Any = None) -> Any:
    """Positional argument `i` or keyword `name` of a torch call."""
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def tensor_arg(s: Session, args: list[Any], kwargs: dict[str, Any], i: int = 0,
               name: str = "input") -> TracedTensor:
    x = arg(args, kwargs, i, name)
    if not isinstance(x, TracedTensor):
        raise s.error("SNN-FE003", f"'{s.current}' expects a tensor of the model as argument "
                      f"{name!r}, got {type(x).__name__}", "pass the activation tensor")
    return x


def ints(v: Any) -> tuple[int, ...]:
    """Sizes given as `f(2, 3)`, `f((2, 3))`, `f([2, 3])` or `f(torch.Size(...))`."""
    if isinstance(v, (tuple, list, torch.Size)):
        if len(v) == 1 and isinstance(v[0], (tuple, list, torch.Size)):
            return ints(v[0])
        return tuple(int(a) for a in v)
    return (int(v),)


def unsupported(s: Session, name: str) -> SnnccError:
    known = ", ".join(sorted(n for n in HANDLERS if not n.startswith(("get:", "__"))))
    return s.error("SNN-FE003", f"unsupported tensor operation '{name}'",
                   f"supported: {known}; or put the code in a module and register a converter "
                   "with snncc.frontends.torch.register_module_converter")


def value_dependent(s: Session, args: list[Any], kwargs: dict[str, Any]) -> Any:
    owner = type(s.stack[-1][1] if s.stack else s.root).__name__
    raise s.error("SNN-FE001", f"{owner}.forward reads tensor values ('{s.current}'), e.g. "
                  "to branch on them; a compiled model cannot depend on its data that way",
                  "branch on shapes or module attributes only, or move that code into a "
                  "module registered with snncc.frontends.torch.register_module_converter")


for _name in ("__bool__", "item", "tolist", "__int__", "__float__", "__index__", "numpy",
              "nonzero", "argmax", "argmin", "gt", "lt", "ge", "le", "eq", "ne", "__gt__",
              "__lt__", "__ge__", "__le__", "__eq__", "__ne__", "greater", "less", "any", "all",
              "equal", "allclose", "isnan", "isinf", "isfinite"):
    HANDLERS[_name] = value_dependent

# the families register themselves on import
from snncc.frontends.torch import fn_layers, fn_math, fn_shapes  # noqa: E402,F401
