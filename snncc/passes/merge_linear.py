"""merge-linear-chains: two weight ops with no neuron between are one linear map.

Re-parameterisable blocks (RepConv in Spike-driven Transformer V2 and SpikeYOLO:
conv1x1 -> BN -> pad with the BN's zero-input output -> depthwise 3x3 ->
pointwise 1x1 -> BN; a plain conv -> BN -> conv; linear -> linear) feed a weight
op the REAL output of another, which the spike-only check would call a
violation although the chain is one linear map of the first op's input. Where
that map is exactly one weight op, this pass replaces the chain by it (weights
composed in float64, stored as float32), so the check judges what a
re-parameterised deployment computes. Merging never changes what the graph
computes, whatever the first op is fed (spikes, the analog input, counts); the
note says what the merged op is fed.

Exact cases (each tested against the interpreter):
- linear(W2, b2) of linear(W1, b1): W = W2 W1, b = W2 b1 + b2.
- conv of conv (conv1d or conv2d, the same op, dilation 1), with at most one
  explicit `pad` between them. Per spatial axis, with first conv kernel k1,
  stride s1, padding p1 and second conv kernel k2, stride s2, padding p2, and
  Q = (explicit pad) + p2 on each side: the merged conv has kernel
  (k2 - 1) s1 + k1, stride s1 s2, padding Q s1 + p1; its bias is b2 plus the
  second kernel's sum applied to b1. Groups: equal groups g stay g (depthwise
  of depthwise is depthwise), different groups give a full conv (depthwise
  then pointwise is a groups=1 conv). Where Q > 0 the border of the first
  conv's output must hold what the merged conv sees there, which is the first
  conv's output for an all-zero window, b1:
  * the first conv's window at the padded border must read no input
    (k1 <= p1 + s1 on the left, out * s1 - p1 >= in on the right; a 1x1 conv
    with no padding always qualifies), and
  * an explicit pad's value must equal b1 in every channel (RepConv's
    BNAndPadLayer pads with exactly that), and the second conv's own zero
    padding needs b1 == 0.

Refused (the chain stays, and the check's violation names it with the reason):
another op than a pad between the two (a pool, a flatten, a scale that could
not be folded), a linear after a conv or the reverse, dilation, asymmetric or
negative padding, padding of non-spatial axes, an intermediate value with a
second user or that is a model output, and the border cases above. Merging may
also make the merged op larger than the chain (depthwise -> pointwise becomes a
full conv); exactness comes first here, a later pass may split it again.

The pass records what it merged in `graph.meta["merged"]` (one entry per merged
op: node, chain, result), which the spike-only report lists as `merged`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from snncc.ir.graph import Graph, Node, Origin
from snncc.ir.op import Multiplies
from snncc.ir.ops.weights import ConvAttrs
from snncc.ir.types import ValueKind
from snncc.passes.manager import PassResult, register_pass

_CONV = ("conv1d", "conv2d")
_WEIGHT = ("linear", *_CONV)
_RTOL, _ATOL = 1e-5, 1e-6  # a pad value "equals" a float32 bias it was computed from


@dataclass(frozen=True)
class Chain:
    """`second` is fed the output of weight op `first` through `between` (single-input ops)."""

    first: Node
    between: tuple[Node, ...]
    second: Node


@dataclass(frozen=True)
class Merge:
    """The one weight op that computes the chain: op, attributes, parameters, a short name."""

    op: str
    attrs: ConvAttrs | None
    params: dict[str, np.ndarray]
    what: str


@dataclass(frozen=True)
class Refusal:
    reason: str
    fix: str | None = None


def describe(node: Node) -> str:
    kind = "linear" if node.op == "linear" else "conv" if node.op in _CONV else node.op
    return f"{kind} `{node.origin.module_path}`" if node.origin.module_path else f"{kind} %{node.name}"


def find_chain(graph: Graph, second: Node) -> Chain | None:
    """The weight op whose output reaches weight op `second` through single-input,
    non-neuron ops only (no neuron between), if there is one."""
    if second.opdef.multiplies != Multiplies.WEIGHT:
        return None
    between: list[Node] = []
    cur = graph.nodes[second.inputs[0]]
    while cur.opdef.multiplies != Multiplies.WEIGHT:
        if cur.opdef.is_neuron or cur.opdef.num_inputs != 1 or cur.type.kind == ValueKind.SPIKE:
            return None
        between.append(cur)
        cur = graph.nodes[cur.inputs[0]]
    if cur.op not in _WEIGHT or second.op not in _WEIGHT:
        return None
    return Chain(cur, tuple(reversed(between)), second)


def plan(graph: Graph, chain: Chain) -> Merge | Refusal:
    """The merged op, or why the chain cannot be merged exactly."""
    first, second = chain.first, chain.second
    others = [n for n in chain.between if n.op != "pad"]
    if others:
        o = others[0]
        where = f" at `{o.origin.module_path}`" if o.origin.module_path else ""
        return Refusal(f"the {o.op}{where} between them is not a pad")
    for n in (first, *chain.between):
        if n.name in graph.outputs:
            return Refusal(f"the output of {describe(n) if n is first else n.op} is a model output")
        users = graph.users(n.name)
        if len(users) != 1:
            return Refusal(f"the output of {describe(n) if n is first else n.op} has "
                           f"{len(users)} users")
    if first.op == "linear" and second.op == "linear":
        if chain.between:
            return Refusal("a pad between two linear layers")
        return _merge_linear(first, second)
    if first.op != second.op:
        return Refusal(f"a {second.op} after a {first.op} is not one weight op")
    return _merge_conv(graph, chain)


def explain(graph: Graph, second: Node) -> tuple[Chain, Refusal] | None:
    """For a weight op fed another's linear output: the chain and why it was not
    merged (None if `second` is not fed a weight op's output)."""
    chain = find_chain(graph, second)
    if chain is None:
        return None
    result = plan(graph, chain)
    if isinstance(result, Refusal):
        return chain, result
    return chain, Refusal("merge-linear-chains did not run (the chain merges exactly)",
                          "canonicalize the graph (snncc's CANONICALIZE pipeline) before the check")


def _bias(node: Node, n: int) -> np.ndarray:
    b = node.params.get("bias")
    return np.zeros(n) if b is None else b.astype(np.float64)


def _params(weight: np.ndarray, bias: np.ndarray, first: Node, second: Node) -> dict[str, np.ndarray]:
    params = {"weight": weight.astype(np.float32)}
    if "bias" in first.params or "bias" in second.params:
        params["bias"] = bias.astype(np.float32)
    return params


def _merge_linear(first: Node, second: Node) -> Merge:
    w1 = first.params["weight"].astype(np.float64)
    w2 = second.params["weight"].astype(np.float64)
    b = w2 @ _bias(first, w1.shape[0]) + _bias(second, w2.shape[0])
    return Merge("linear", None, _params(w2 @ w1, b, first, second), "linear")


def _dense(w: np.ndarray, groups: int) -> np.ndarray:
    """A grouped kernel [O, I/g, *k] as the full [O, I, *k] one (zeros off the groups)."""
    o, ig = w.shape[:2]
    out = np.zeros((o, ig * groups, *w.shape[2:]))
    og = o // groups
    for g in range(groups):
        out[g * og:(g + 1) * og, g * ig:(g + 1) * ig] = w[g * og:(g + 1) * og]
    return out


def _grouped(w: np.ndarray, groups: int) -> np.ndarray:
    o, i = w.shape[:2]
    og, ig = o // groups, i // groups
    return np.concatenate([w[g * og:(g + 1) * og, g * ig:(g + 1) * ig] for g in range(groups)])


def _explicit_pad(chain: Chain, n: int) -> tuple[list[int], float] | Refusal:
    """Per spatial axis, the explicit pad on each side, and its value."""
    if len(chain.between) > 1:
        return Refusal("more than one pad between them")
    if not chain.between:
        return [0] * n, 0.0
    pad = chain.between[0]
    fields = pad.attrs.model_dump()  # PadAttrs(pads, value): F.pad order, last axis first
    pads, value = tuple(int(p) for p in fields["pads"]), float(fields["value"])
    per_axis = [0] * n
    for j in range(len(pads) // 2):
        left, right = pads[2 * j], pads[2 * j + 1]
        if j >= n:
            if left or right:
                return Refusal("the pad between them pads a non-spatial axis")
            continue
        if left != right or left < 0:
            return Refusal(f"the pad between them is asymmetric or negative ({pads})")
        per_axis[n - 1 - j] = left
    return per_axis, value


def _merge_conv(graph: Graph, chain: Chain) -> Merge | Refusal:
    first, second = chain.first, chain.second
    a1, a2 = first.attrs, second.attrs
    assert isinstance(a1, ConvAttrs) and isinstance(a2, ConvAttrs)
    w1 = first.params["weight"].astype(np.float64)
    w2 = second.params["weight"].astype(np.float64)
    n = w1.ndim - 2
    if any(d != 1 for d in (*a1.dilation, *a2.dilation)):
        return Refusal("a dilated conv in the chain")
    explicit = _explicit_pad(chain, n)
    if isinstance(explicit, Refusal):
        return explicit
    pad, value = explicit
    k1, k2 = w1.shape[2:], w2.shape[2:]
    s1, p1 = a1.stride, a1.padding
    size_in = graph.nodes[first.inputs[0]].type.shape[-n:]
    size_mid = first.type.shape[-n:]
    b1 = _bias(first, w1.shape[0])
    for i in range(n):
        if pad[i] + a2.padding[i] == 0:
            continue
        if not (k1[i] <= p1[i] + s1[i] and size_mid[i] * s1[i] - p1[i] >= size_in[i]):
            return Refusal(
                f"{describe(second)} is padded around the output of a {k1[i]}-wide first conv "
                f"with padding {p1[i]}, whose border windows read the input: the merged conv "
                "would see partial sums there, not the padding",
                "pad before the first conv instead, or make the first conv 1x1")
        if pad[i] and not np.allclose(b1, value, rtol=_RTOL, atol=_ATOL):
            return Refusal(
                f"the pad between them fills with {value:g}, but {describe(first)} outputs "
                "its bias (per channel, not that value) for a zero input",
                "pad with the first layer's output for a zero input (RepConv's BNAndPadLayer)")
        if a2.padding[i] and not np.allclose(b1, 0.0, rtol=0.0, atol=_ATOL):
            return Refusal(
                f"{describe(second)} pads with zeros, but {describe(first)} outputs its bias "
                "(not 0) for a zero input",
                "pad explicitly with the first layer's output for a zero input "
                "(RepConv's BNAndPadLayer) and give the second conv padding 0")
    g1, g2 = a1.groups, a2.groups
    d1, d2 = _dense(w1, g1), _dense(w2, g2)
    ksize = tuple((k2[i] - 1) * s1[i] + k1[i] for i in range(n))
    merged = np.zeros((d2.shape[0], d1.shape[1], *ksize))
    for off in itertools.product(*(range(k) for k in k2)):
        window = tuple(slice(off[i] * s1[i], off[i] * s1[i] + k1[i]) for i in range(n))
        tap = d2[(slice(None), slice(None)) + tuple(off)]  # [O, C]: this offset of kernel 2
        merged[(slice(None), slice(None)) + window] += np.einsum("oc,ci...->oi...", tap, d1)
    bias = d2.sum(axis=tuple(range(2, 2 + n))) @ b1 + _bias(second, d2.shape[0])
    groups = g1 if g1 == g2 else 1
    weight = _grouped(merged, groups) if groups > 1 else merged
    attrs = ConvAttrs(
        stride=tuple(s1[i] * a2.stride[i] for i in range(n)),
        padding=tuple((pad[i] + a2.padding[i]) * s1[i] + p1[i] for i in range(n)),
        dilation=(1,) * n, groups=groups)
    what = ("x".join(str(k) for k in ksize) + " conv") if n == 2 else f"kernel-{ksize[0]} conv1d"
    if groups > 1:
        what += f" (groups {groups})"
    if any(s > 1 for s in attrs.stride):
        strides = sorted(set(attrs.stride))
        what += f" (stride {strides[0] if len(strides) == 1 else 'x'.join(map(str, attrs.stride))})"
    return Merge(first.op, attrs, _params(weight, bias, first, second), what)


def _common_path(paths: list[str]) -> str:
    """The module that holds every merged layer (`blk` for `blk.pw1`, `blk.dw`), else the first."""
    parts = [p.split(".") for p in paths if p]
    if not parts:
        return ""
    common: list[str] = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return ".".join(common or parts[0])


@dataclass
class _Record:
    chain: list[str]  # "conv `blk.pw1`", "pad", "conv `blk.dw`", ...
    modules: list[str]  # the merged weight ops' module paths
    into: str
    new: bool = True  # merged by this run of the pass


def _stored(graph: Graph) -> dict[str, _Record]:
    """What an earlier run of this pass merged, by the node that holds it now."""
    out: dict[str, _Record] = {}
    entries = graph.meta.get("merged", [])
    for e in entries if isinstance(entries, list) else []:
        if not isinstance(e, dict) or e.get("node") not in graph.nodes:
            continue
        out[str(e["node"])] = _Record([str(c) for c in e.get("chain", [])],
                                      [str(m) for m in e.get("modules", [])],
                                      str(e.get("into", "")), new=False)
    return out


@register_pass("merge-linear-chains")
def merge_linear_chains(graph: Graph) -> PassResult:
    """Replace every exactly-mergeable chain of weight ops by one weight op; see module doc."""
    records = _stored(graph)
    modified, progress = False, True
    while progress:
        progress = False
        for node in graph:
            chain = find_chain(graph, node)
            if chain is None:
                continue
            merge = plan(graph, chain)
            if isinstance(merge, Refusal):
                continue
            first, second = chain.first, chain.second
            r1 = records.pop(first.name, None) or _Record([describe(first)],
                                                          [first.origin.module_path], "")
            r2 = records.pop(second.name, None) or _Record([describe(second)],
                                                           [second.origin.module_path], "")
            rec = _Record(r1.chain + [n.op for n in chain.between] + r2.chain,
                          r1.modules + r2.modules, merge.what)
            _apply(graph, chain, merge, Origin(_common_path(rec.modules),
                                               "merged: " + " -> ".join(rec.chain)))
            records[second.name] = rec
            graph.remove_dead()
            modified = progress = True
            break  # the graph changed under the loop
    if not modified:
        return PassResult(graph, False, [])
    graph.toposort()
    notes, entries = [], []
    for name, rec in records.items():
        node = graph.nodes[name]
        fed = graph.nodes[node.inputs[0]].type.kind.value
        note = f"merged {' -> '.join(rec.chain)} into one {rec.into} (fed {fed})"
        if rec.new:
            notes.append(note)
        entries.append({"node": name, "module_path": node.origin.module_path, "chain": rec.chain,
                        "modules": rec.modules, "into": rec.into, "fed": fed, "note": note})
    graph.meta["merged"] = entries
    return PassResult(graph, True, notes)


def _apply(graph: Graph, chain: Chain, merge: Merge, origin: Origin) -> None:
    """Rebuild `second` as the merged op on `first`'s input (same name and place)."""
    second = chain.second
    if merge.op != second.op:
        raise AssertionError(f"merge of {chain.first.op} into {second.op}")
    attrs = merge.attrs if merge.attrs is not None else second.attrs
    new = graph.rebuild(second, inputs=[chain.first.inputs[0]], attrs=attrs, params=merge.params)
    if new.type.shape != second.type.shape or new.type.layout != second.type.layout:
        raise AssertionError(f"merging into %{second.name} changed its type "
                             f"{second.type.render()} -> {new.type.render()}")
    graph.nodes[second.name] = replace(new, origin=origin)
