"""An oracle for the spike-only check that shares no code with snncc.

snncc decides on its own IR whether each multiply is an accumulate: its frontend
turns the model into a graph, canonicalization rewrites the graph, and interval
arithmetic says which values are spikes. A bug in any of those steps can make the
check agree with itself. This oracle imports nothing from snncc and reads no IR:
it runs the model's own PyTorch forward (eval mode, no grad) on real random
inputs and watches every weight op as it happens, through a ``TorchFunctionMode``
(every torch function and tensor method the forward calls) and module hooks
(which module is running, where the neurons are). Its verdict per module path:

- AC: an activation operand held only 0s and 1s, on every input;
- ENCODING_MAC: a conv/linear fed the model input itself (moved, reshaped or
  repeated only);
- READOUT_MAC: a weight op whose output reaches the model outputs and never feeds
  another weight op or a neuron, fed an average (mean, average pool, scaled sum)
  of spikes or spike counts;
- VIOLATION: anything else.

It judges values, not types, so a layer that never fires would make everything
after it look binary: the report carries every neuron's firing rate and the
number of 1s seen in AC operands, and tests assert both are non-zero. A module
path called several times (a loop over time steps) gets its worst verdict.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from spikingjelly.activation_based import base as ab_base
from spikingjelly.activation_based import neuron as ab_neuron
from spikingjelly.clock_driven import base as cd_base
from spikingjelly.clock_driven import neuron as cd_neuron
from torch import nn
from torch.overrides import TorchFunctionMode

NEURONS = (ab_neuron.BaseNode, cd_neuron.BaseNode)
MEMORY = (ab_base.MemoryModule, cd_base.MemoryModule)

WEIGHTED = {"conv1d", "conv2d", "linear"}  # activation x weight: operand is args[0]
MATMUL = {"matmul", "__matmul__", "__rmatmul__", "bmm", "einsum"}  # activation x activation
# ops that only move, copy or select values (the model input stays the model input)
MOVES = {"reshape", "view", "flatten", "unflatten", "unsqueeze", "unsqueeze_", "squeeze",
         "squeeze_", "repeat", "expand", "expand_as", "permute", "transpose", "t",
         "contiguous", "__getitem__", "clone", "detach", "stack", "cat", "concat", "chunk",
         "split", "unbind", "to", "float", "dropout", "narrow", "select", "movedim",
         "view_as", "reshape_as", "repeat_interleave", "tile"}
AVERAGES = {"mean", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d"}
SCALES = {"mul", "__mul__", "__rmul__", "__imul__", "div", "__truediv__", "__itruediv__"}
SUMS = {"add", "__add__", "__radd__", "__iadd__", "sum"}
RANK = {"AC": 0, "ENCODING_MAC": 1, "READOUT_MAC": 2, "VIOLATION": 3}


@dataclass(frozen=True)
class Info:
    """What the oracle knows about one tensor of the running forward."""

    last_ops: frozenset[int] = frozenset()  # weight-op calls reaching it with no weight op/neuron between
    is_input: bool = False  # the model input, moved only
    averaged: bool = False  # an average of spikes or counts (then moved, scaled or summed)


@dataclass
class Call:
    path: str
    op: str
    binary: bool  # an activation operand is all 0/1
    ones: int  # 1s in that operand
    is_input: bool
    averaged: bool
    consumed: bool = False  # its output fed another weight op or a neuron
    reaches_output: bool = False


@dataclass
class OracleReport:
    classes: dict[str, str]  # module path -> AC / ENCODING_MAC / READOUT_MAC / VIOLATION
    firing: dict[str, float]  # neuron module path -> fraction of 1s over all inputs
    ones_seen: int  # 1s in the binary operands of weight ops
    calls: list[list[Call]] = field(default_factory=list)  # per input, every weight op call

    def paths(self, cls: str) -> set[str]:
        return {p for p, c in self.classes.items() if c == cls}


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


def _binary(t: torch.Tensor) -> bool:
    return bool(((t == 0) | (t == 1)).all())


def _counts(t: torch.Tensor) -> bool:
    """Non-negative integers: spikes, or sums of spikes (SEW-ResNet's ADD)."""
    return t.is_floating_point() and bool((t >= 0).all()) and bool((t == t.round()).all())


class _Run:
    """The bookkeeping of one forward."""

    def __init__(self) -> None:
        self.info: dict[int, Info] = {}
        self.keep: list[torch.Tensor] = []  # holds every tagged tensor, so ids stay unique
        self.calls: list[Call] = []
        self.stack: list[str] = []
        self.quiet = False

    def get(self, t: Any) -> Info:
        return self.info.get(id(t), Info()) if isinstance(t, torch.Tensor) else Info()

    def put(self, t: torch.Tensor, info: Info) -> None:
        self.info[id(t)] = info
        self.keep.append(t)

    def consume(self, tensors: Sequence[torch.Tensor]) -> None:
        for t in tensors:
            for i in self.get(t).last_ops:
                self.calls[i].consumed = True

    def after(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        name = getattr(func, "__name__", "")
        tensors = list(_tensors((args, kwargs)))
        if not tensors:
            return
        ins = [self.get(t) for t in tensors]
        reach = frozenset().union(*(i.last_ops for i in ins))
        if name in WEIGHTED or name in MATMUL:
            self.consume(tensors)
            if name in WEIGHTED:
                operands = [args[0] if args else kwargs["input"]]
            else:  # both operands, less any that is a weight (einsum: after its equation)
                operands = [a for a in tensors if not isinstance(a, nn.Parameter)]
            binary = [o for o in operands if _binary(o)]
            self.calls.append(Call(
                path=self.stack[-1] if self.stack else "", op=name, binary=bool(binary),
                ones=int(sum(o.sum() for o in binary)),
                is_input=name in WEIGHTED and self.get(operands[0]).is_input,
                averaged=all(self.get(o).averaged for o in operands)))
            new = Info(frozenset({len(self.calls) - 1}))
        elif name in MOVES:
            parts = list(_tensors(args[0])) or tensors[:1]
            new = Info(reach, all(self.get(p).is_input for p in parts),
                       all(self.get(p).averaged for p in parts))
        elif name in AVERAGES:
            src = tensors[0]
            new = Info(reach, False, self.get(src).averaged or _counts(src))
        elif name in SCALES and len(tensors) == 1:
            new = Info(reach, False, ins[0].averaged or _counts(tensors[0]))
        elif name in SUMS:
            new = Info(reach, False, all(i.averaged for i in ins))
        else:
            new = Info(reach)
        targets = list(_tensors(out))
        in_place = name.endswith("_") and not name.startswith("__")
        if name == "__setitem__" or (in_place and not targets):
            targets = [args[0]]
        for t in targets:
            self.put(t, new)


class _Watch(TorchFunctionMode):
    def __init__(self, run: _Run) -> None:
        super().__init__()
        self.run = run

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not self.run.quiet:
            self.run.after(func, args, kwargs, out)
        return out


def reset_state(model: nn.Module) -> None:
    """SpikingJelly's reset_net, for both of its APIs."""
    for m in model.modules():
        if isinstance(m, MEMORY):
            m.reset()


def _hooks(model: nn.Module, run: _Run, firing: dict[str, list[int]]) -> list[Any]:
    def pre(path: str, neuron: bool):
        def hook(module: nn.Module, args: tuple) -> None:
            run.stack.append(path)
            if neuron:
                run.consume(list(_tensors(args)))
        return hook

    def post(path: str, neuron: bool):
        def hook(module: nn.Module, args: tuple, out: Any) -> None:
            run.stack.pop()
            if neuron:
                run.quiet = True
                for t in _tensors(out):
                    run.put(t, Info())
                    firing[path][0] += int(t.sum())
                    firing[path][1] += t.numel()
                run.quiet = False
        return hook

    handles = []
    for path, m in model.named_modules():
        neuron = isinstance(m, NEURONS)
        handles.append(m.register_forward_pre_hook(pre(path, neuron)))
        handles.append(m.register_forward_hook(post(path, neuron)))
    return handles


def _verdict(runs: list[Call]) -> str:
    if all(c.binary for c in runs):
        return "AC"
    if all(c.is_input for c in runs):
        return "ENCODING_MAC"
    if all(c.reaches_output and not c.consumed and c.averaged for c in runs):
        return "READOUT_MAC"
    return "VIOLATION"


@torch.no_grad()
def spike_only_oracle(model: nn.Module, inputs: Sequence[torch.Tensor | tuple]) -> OracleReport:
    """Run `model` on each of `inputs` (a tensor, or a tuple of forward arguments) and
    classify every weight op by what it was really fed."""
    training = {m: m.training for m in model.modules()}
    model.eval()
    firing: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    per_input: list[list[Call]] = []
    try:
        for x in inputs:
            args = x if isinstance(x, tuple) else (x,)
            run = _Run()
            for a in _tensors(args):
                run.put(a, Info(is_input=True))
            handles = _hooks(model, run, firing)
            reset_state(model)
            try:
                with _Watch(run):
                    out = model(*args)
            finally:
                for h in handles:
                    h.remove()
                reset_state(model)
            for t in _tensors(out):
                for i in run.get(t).last_ops:
                    run.calls[i].reaches_output = True
            per_input.append(run.calls)
    finally:
        for m, mode in training.items():
            m.training = mode
    by_key: dict[tuple[str, int], list[Call]] = defaultdict(list)
    for calls in per_input:
        seen: dict[str, int] = defaultdict(int)
        for c in calls:
            by_key[(c.path, seen[c.path])].append(c)
            seen[c.path] += 1
    classes: dict[str, str] = {}
    for (path, _), runs in by_key.items():
        v = _verdict(runs)
        if RANK[v] >= RANK.get(classes.get(path, "AC"), 0):
            classes[path] = v
    ones = sum(c.ones for calls in per_input for c in calls if c.binary)
    rates = {p: ones_ / max(total, 1) for p, (ones_, total) in firing.items()}
    return OracleReport(classes, rates, ones, per_input)
