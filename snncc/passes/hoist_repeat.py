"""hoist-time-repeat: repeat a static image over time before the per-step layers that
read it, not after them.

Models written for a `[B, C, H, W]` input often run the encoding layers once and
then repeat their output over T (`x = bn1(conv1(x)); x.unsqueeze_(0).repeat(T, ...)`,
SpikingJelly's `MultiStepCIFAR10Net` and 4-D `multi_step_sew_resnet`). For an op f
that treats leading axes as batch, `f(x).unsqueeze(0).repeat(T, 1, ...) ==
f(x.unsqueeze(0).repeat(T, 1, ...))`, so moving the repeat up to the input puts
the time axis where the rest of the compiler expects it: the encoding layer then
reads the (repeated) analog input directly, as in every other model, and is
charged T x its MACs, as the papers' counters charge it.
"""

from __future__ import annotations

from snncc.ir.graph import Graph, Node
from snncc.ir.ops.structure import DimAttrs
from snncc.ir.types import Layout
from snncc.passes.manager import PassResult, register_pass


def _hoistable(graph: Graph, rep: Node, users: dict[str, list[Node]]) -> tuple[Node, Node] | None:
    """(unsqueeze, f) if `rep` is `f(x).unsqueeze(0).repeat(...)` with f per-sample."""
    if rep.op != "repeat":
        return None
    uns = graph.nodes[rep.inputs[0]]
    if uns.op != "unsqueeze" or not isinstance(uns.attrs, DimAttrs) or uns.attrs.dim != 0:
        return None
    f = graph.nodes[uns.inputs[0]]
    if not f.opdef.leading_dims_agnostic or f.opdef.num_inputs != 1 or f.op == "input":
        return None
    src = graph.nodes[f.inputs[0]]
    single = len(users[f.name]) == 1 and len(users[uns.name]) == 1
    if not single or f.name in graph.outputs or uns.name in graph.outputs:
        return None
    if f.type.layout != Layout.STATIC or len(src.type.shape) != len(f.type.shape):
        return None
    return uns, f


@register_pass("hoist-time-repeat")
def hoist_time_repeat(graph: Graph) -> PassResult:
    notes: list[str] = []
    changed = True
    while changed:
        changed = False
        users = graph.users_map()
        for rep in graph:
            found = _hoistable(graph, rep, users)
            if found is None:
                continue
            uns, f = found
            new_uns = graph.add("unsqueeze", [f.inputs[0]], uns.attrs, origin=uns.origin)
            new_rep = graph.add("repeat", [new_uns.name], rep.attrs, origin=rep.origin)
            new_f = graph.add(f.op, [new_rep.name], f.attrs, f.params, f.origin, name=f.name)
            graph.replace_uses(rep.name, new_f.name)
            graph.remove_dead()
            graph.toposort()
            notes.append(f"repeated over time before %{f.name} ({f.origin.module_path})")
            changed = True
            break
    return PassResult(graph, bool(notes), notes)
