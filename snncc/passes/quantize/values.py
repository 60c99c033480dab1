"""Where and how each value of a quantized graph lives, and the float bias it carries.

Why its own module: every later step of quantization, and acsim, which runs
the result, starts from the same three facts about a value: its category
(:class:`Cat`: a spike, an exact count, an integer current, the analog input,
or a host float), its per-sample view (the lead axes T and B, the item shape,
structural ops applied per sample, whatever the batch size), and, for a
current, the exact float bias that reached it (the *pending bias*).
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph, Node
from snncc.ir.groups import NEURON_OPS as NEURON_OPS
from snncc.ir.groups import STRUCTURAL_OPS as STRUCTURAL_OPS
from snncc.ir.groups import WEIGHT_OPS as WEIGHT_OPS
from snncc.ir.ops.combine import PadAttrs
from snncc.ir.ops.elementwise import ScalarAttrs
from snncc.ir.ops.reduce import ReduceAttrs
from snncc.ir.ops.structure import PermuteAttrs, TransposeAttrs
from snncc.ir.types import Layout, ValueKind
from snncc.passes.quantize.moves import MAX_OPS, NEW_OPS, apply_move, check_per_sample, is_move

# WEIGHT_OPS, NEURON_OPS and STRUCTURAL_OPS (the relabelings, which item_structural applies
# per sample) are derived from the op table (snncc.ir.groups); the rest of quantization and
# acsim import them from here.


class Cat(str, Enum):
    """Where and how a value lives in the quantized graph."""

    SPIKE = "spike"  # binary, on chip
    COUNT = "count"  # exact integer (spike counts, AND-counts), on chip
    CURRENT = "current"  # integer synaptic input a = s * (X - pending bias), on chip
    ANALOG = "analog"  # the model's analog input, on the host
    HOST = "host"  # float on the host (readout)


# --------------------------------------------------------------- structure ----


def lead_axes(node: Node) -> int:
    """Leading axes that are not part of one sample: [T, B] for time-first values, [B] else."""
    return 2 if node.type.layout == Layout.TIME else 1


def item_shape(node: Node) -> tuple[int, ...]:
    return node.type.shape[lead_axes(node):]


def _norm_dims(dims: tuple[int, ...], ndim: int) -> list[int]:
    return [d + ndim if d < 0 else d for d in dims]


def item_structural(node: Node, src: Node, x: np.ndarray) -> np.ndarray:
    """Apply a structural op to ``x`` whose leading axes (T, B or B) may have any size.

    The IR bakes the traced batch size into reshapes; acsim runs any batch, so
    ops are applied per sample. An op that moves the time or batch axis is not
    something a chip does per step: it is refused here.
    """
    lead_in, lead_out = lead_axes(src), lead_axes(node)
    op = node.op
    if op == "identity":
        return x
    if op in ("reshape", "flatten", "unsqueeze"):
        if lead_in != lead_out or src.type.shape[:lead_in] != node.type.shape[:lead_out]:
            raise _unsupported(node, "it moves the time or batch axis")
        return x.reshape(*x.shape[:lead_in], *item_shape(node))
    if op in ("transpose", "permute"):
        ndim = len(src.type.shape)
        if op == "transpose":
            assert isinstance(node.attrs, TransposeAttrs)
            a, b = _norm_dims((node.attrs.dim0, node.attrs.dim1), ndim)
            perm = list(range(ndim))
            perm[a], perm[b] = perm[b], perm[a]
        else:
            assert isinstance(node.attrs, PermuteAttrs)
            perm = _norm_dims(node.attrs.dims, ndim)
        if perm[:lead_in] != list(range(lead_in)) or lead_in != lead_out:
            raise _unsupported(node, "it moves the time or batch axis")
        return np.transpose(x, perm)
    raise _unsupported(node, "acsim has no per-sample form of this op")


def sum_axes(node: Node, src: Node) -> tuple[list[int], bool]:
    """Axes a ``sum`` reduces (of the input), and whether it reduces time."""
    assert isinstance(node.attrs, ReduceAttrs)
    dims = sorted(set(_norm_dims(node.attrs.dims, len(src.type.shape))))
    lead = lead_axes(src)
    batch_axis = lead - 1
    if batch_axis in dims:
        raise _unsupported(node, "it sums over the batch axis")
    return dims, lead == 2 and 0 in dims


def _unsupported(node: Node, why: str) -> SnnccError:
    return SnnccError(
        "SNN-Q001", f"acsim cannot place {node.op} %{node.name}: {why}",
        location=node.location(),
        hint="only per-sample ops can run on a chip; compile with --target ir to inspect the graph",
    )


# ------------------------------------------------------------ categories ----


PER_NEURON_DECAYS = {"decay", "syn_decay"}  # lif's, leaky_integrator's, recurrent's params


def categorize(graph: Graph) -> dict[str, Cat]:
    """Decide, in topological order, what kind of value every node holds and where."""
    cat: dict[str, Cat] = {}
    cause: dict[str, Node] = {}  # per HOST value: the op that first left the chip
    for n in graph:
        ins = [cat[i] for i in n.inputs]
        srcs = [graph.nodes[i] for i in n.inputs]
        if n.op in NEW_OPS:
            check_per_sample(n, srcs[0])
        if PER_NEURON_DECAYS & set(n.params):
            raise SnnccError(
                "SNN-Q001", f"acsim cannot place {n.op} %{n.name}: its neurons have time "
                "constants that differ, and acsim's (and Lava's) neuron program takes one leak "
                "per layer", location=n.location(),
                hint="compile with --target ir, nir or onnx, or train the layer with one "
                     "time constant")
        if n.opdef.feeds_back:
            raise SnnccError(
                "SNN-Q001", f"acsim cannot place recurrent %{n.name}: its spikes feed back "
                "into it through its own weights at the next step, and acsim's (and Lava's) "
                "layer programs only feed forward", location=n.location(),
                hint="compile with --target ir, nir or onnx, which keep the recurrent layer")
        c = _category(n, srcs, ins)
        if n.opdef.is_neuron and ins[0] not in (Cat.CURRENT, Cat.COUNT, Cat.ANALOG, Cat.SPIKE):
            raise _host_read(n, cause.get(n.inputs[0]), graph)
        if c == Cat.HOST:
            cause[n.name] = next((cause[i] for i in n.inputs if i in cause), n)
        cat[n.name] = c
    return cat


def _host_read(n: Node, cause: Node | None, graph: Graph) -> SnnccError:
    """A chip neuron reads a host value: name the op acsim had no on-chip rule for."""
    why = ""
    if cause is not None and not cause.opdef.is_neuron:
        kinds = ", ".join(graph.nodes[i].type.kind.value for i in cause.inputs)
        path = cause.origin.module_path or "<root>"
        why = (f"; acsim has no rule for op {cause.op} (node %{cause.name}, module '{path}') "
               f"on chip with {kinds} inputs, so it and everything after it ran on the host")
    return SnnccError(
        "SNN-Q003",
        f"neuron %{n.name} reads a host value: a chip neuron cannot read the result of a "
        f"host computation{why}",
        location=n.location(),
        hint="the readout (a weight op fed non-spikes) must come after the last neuron; "
             "feed the op spikes or counts (for a pool: max-pool, or average over one element "
             "per bin), or compile with --target ir",
    )


def _category(n: Node, srcs: list[Node], ins: list[Cat]) -> Cat:
    if n.op == "input":
        return Cat.SPIKE if n.type.kind.value == "SPIKE" else Cat.ANALOG
    if Cat.HOST in ins:
        return Cat.HOST
    if n.op in NEW_OPS:
        return _new_op_category(n, srcs, ins)
    if n.opdef.is_neuron:
        return Cat.SPIKE
    if n.op in WEIGHT_OPS:
        return Cat.CURRENT if ins[0] in (Cat.SPIKE, Cat.COUNT, Cat.ANALOG) else Cat.HOST
    if n.op in STRUCTURAL_OPS:
        return ins[0]
    if n.op == "time_mask":
        return ins[0] if ins[0] in (Cat.SPIKE, Cat.COUNT) else Cat.HOST
    if Cat.ANALOG in ins:
        return Cat.ANALOG if n.op in ("maxpool2d", "repeat") else Cat.HOST
    if n.op in ("add", "sub"):
        if Cat.CURRENT in ins:
            return Cat.CURRENT
        return Cat.COUNT
    if n.op == "sum":
        return Cat.COUNT if ins[0] == Cat.SPIKE else ins[0]
    if n.op == "maxpool2d":
        return ins[0] if ins[0] in (Cat.SPIKE, Cat.COUNT) else Cat.HOST
    if n.op == "matmul":
        if Cat.SPIKE in ins and all(c in (Cat.SPIKE, Cat.COUNT) for c in ins):
            return Cat.COUNT
        return Cat.HOST
    if n.op == "mul":
        if ins == [Cat.SPIKE, Cat.SPIKE]:
            return Cat.SPIKE
        if Cat.SPIKE in ins and Cat.COUNT in ins:
            return Cat.COUNT
        return Cat.HOST
    if n.op == "rsub" and ins[0] == Cat.SPIKE:
        assert isinstance(n.attrs, ScalarAttrs)
        return Cat.SPIKE if n.attrs.value == 1.0 else Cat.HOST
    return Cat.HOST


def _new_op_category(n: Node, srcs: list[Node], ins: list[Cat]) -> Cat:
    """cat, slice, pad, upsample_nearest, adaptive pools, amax (see :mod:`.moves`)."""
    if n.op == "cat":
        kinds = set(ins)
        if len(kinds) == 1:
            return ins[0]
        return Cat.COUNT if kinds <= {Cat.SPIKE, Cat.COUNT} else Cat.HOST
    x = ins[0]
    if x == Cat.ANALOG:  # the host computes on its own input, before encoding it
        return Cat.ANALOG
    if n.op == "pad":
        assert isinstance(n.attrs, PadAttrs)
        v = n.attrs.value
        if v == 0.0:
            return x
        if x in (Cat.SPIKE, Cat.COUNT) and n.type.integer and v >= 0:  # fills with a count
            return Cat.SPIKE if n.type.kind == ValueKind.SPIKE else Cat.COUNT
        return Cat.HOST
    if is_move(n, srcs[0]):
        return x
    if n.op in MAX_OPS and x in (Cat.SPIKE, Cat.COUNT):  # OR of spikes, max of counts
        return x
    return Cat.HOST


# ---------------------------------------------------------- pending bias ----


def _bias_item(n: Node) -> np.ndarray:
    """A weight op's bias as an item-shaped array (zeros when it has none)."""
    shape = item_shape(n)
    b = n.params.get("bias")
    out = np.zeros(shape, dtype=np.float64)
    if b is None:
        return out
    axis = n.opdef.channel_axis
    assert axis is not None
    view = [1] * len(shape)
    view[axis] = -1
    return out + np.asarray(b, dtype=np.float64).reshape(view)


def pending_biases(graph: Graph, cat: dict[str, Cat]) -> dict[str, np.ndarray]:
    """Per CURRENT node, the exact float bias that reached it (item shape).

    For a value computed by a ``sum`` over time, the bias was present at every
    one of the T steps, so it counts T times.
    """
    pb: dict[str, np.ndarray] = {}
    T = graph.time_steps
    for n in graph:
        if cat[n.name] != Cat.CURRENT:
            continue
        srcs = [graph.nodes[i] for i in n.inputs]
        if n.op in WEIGHT_OPS:
            pb[n.name] = _bias_item(n)
        elif n.op in ("add", "sub"):
            parts = [pb.get(s.name, np.zeros(item_shape(s))) for s in srcs]
            shape = item_shape(n)
            a = np.broadcast_to(_right_align(parts[0], shape), shape)
            b = np.broadcast_to(_right_align(parts[1], shape), shape)
            pb[n.name] = np.array(a + b if n.op == "add" else a - b, dtype=np.float64)
        elif n.op in STRUCTURAL_OPS:
            x = pb[srcs[0].name][(np.newaxis,) * lead_axes(srcs[0])]
            pb[n.name] = item_structural(n, srcs[0], x)[(0,) * lead_axes(n)].copy()
        elif n.op in NEW_OPS:  # a move (a max of currents is never CURRENT): pads carry 0
            xs = [pb[s.name][(np.newaxis,) * lead_axes(s)] for s in srcs]
            pb[n.name] = apply_move(n, srcs, xs, fill=0.0)[(0,) * lead_axes(n)].copy()
        elif n.op == "sum":
            dims, over_time = sum_axes(n, srcs[0])
            lead = lead_axes(srcs[0])
            x = pb[srcs[0].name][(np.newaxis,) * lead]
            assert isinstance(n.attrs, ReduceAttrs)
            item_dims = tuple(d for d in dims if d >= lead)
            y = np.sum(np.broadcast_to(x, (1,) * lead + item_shape(srcs[0])), axis=item_dims,
                       keepdims=n.attrs.keepdim)
            if over_time:
                y = np.sum(y, axis=0, keepdims=n.attrs.keepdim) * T
            pb[n.name] = np.array(y[(0,) * lead_axes(n)], dtype=np.float64)
        else:
            raise AssertionError(f"no bias rule for current op {n.op}")
    return pb


def _right_align(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return x.reshape((1,) * (len(shape) - x.ndim) + x.shape)
