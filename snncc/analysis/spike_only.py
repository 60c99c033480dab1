"""The spike-only check: is every weight op an accumulate triggered by a spike?

Run on a canonicalized graph (BN and constant scales folded), it classifies
every multiply:
- AC: one operand is SPIKE (a select and an add on hardware);
- ENCODING_MAC: a weight op fed the analog model input (direct encoding);
- READOUT_MAC: a warning, not a violation: a multiply after the readout's
  reduction over time, a multiply that is not a weight op after the last weight
  op (averaging/scaling the outputs), or the classifier head: a weight op
  (a) with no weight op and no neuron after it, whose outputs reach only the
  model's outputs, and (b) fed averaged spikes: a value made from spikes by
  structural ops, scales, sums, means, adds (the integer residual stream of
  SEW-ResNet's ADD), max and average pools (adaptive or not) only. That is the
  head of a model returning per-step logits (`[T, B, classes]`, averaged over
  T by the user) as well as one that averages over time itself;
- VIOLATION: any other multiply: an integer or real activation times a weight
  or another non-spike tensor.
A violation names the node, its module path, the operand kinds and ranges, the
chain of nodes that made the operand non-spike, and a fix; a weight op fed
another's linear output with no neuron between (which `merge-linear-chains`
could not merge into one) names that layer and why the chain stays.
The report lists what canonicalization merged (`graph.meta["merged"]`).
"""

from __future__ import annotations

from enum import Enum

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field

from snncc.ir.graph import Graph, Node
from snncc.ir.op import Multiplies, Temporal
from snncc.ir.types import Layout, ValueKind
from snncc.passes.merge_linear import describe, explain

# Ops that keep a head's operand "averaged spikes": a (scaled) non-negative
# combination of spikes (max pools: a selection of them). After canonicalization a
# mean is `sum`, its 1/N folded into the head's weights; an op that turns an average
# pool into a sum pool belongs here too.
_AVERAGING = frozenset({"sum", "mean", "add", "scale", "avgpool2d", "adaptive_avgpool2d",
                        "maxpool2d", "adaptive_maxpool2d", "time_mask"})


class MulClass(str, Enum):
    AC = "AC"
    ENCODING_MAC = "ENCODING_MAC"
    READOUT_MAC = "READOUT_MAC"
    VIOLATION = "VIOLATION"


class Finding(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    cls: MulClass = Field(alias="class")
    node: str
    module_path: str
    op: str
    operand_kinds: list[str]
    operand_ranges: list[str]
    message: str
    hint: str | None = None
    provenance: list[str] = []


class MergedChain(BaseModel):
    """A chain of weight ops canonicalization merged into one (see merge-linear-chains)."""

    node: str
    module_path: str
    chain: list[str]
    into: str
    note: str


class SpikeOnlyReport(BaseModel):
    findings: list[Finding]
    merged: list[MergedChain] = []

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.cls == MulClass.VIOLATION]

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> dict[str, int | bool]:
        counts: dict[str, int | bool] = {c.value: 0 for c in MulClass}
        for f in self.findings:
            counts[f.cls.value] = int(counts[f.cls.value]) + 1
        counts["ok"] = self.ok
        return counts

    def to_json(self) -> dict[str, object]:
        return {
            "findings": [f.model_dump(by_alias=True, mode="json") for f in self.findings],
            "summary": self.summary(),
            "merged": [m.model_dump(mode="json") for m in self.merged],
        }


def _describe(node: Node) -> str:
    return f"{node.type.kind.value.lower()}{node.type.range_text()}"


def provenance(graph: Graph, name: str) -> list[str]:
    """Why a value is not a spike: walk back through moves and through the
    non-spike inputs of the ops that made it, naming each with its module."""
    chain: list[str] = []
    seen: set[str] = set()
    stack = [name]
    while stack and len(chain) < 12:
        n = graph.nodes[stack.pop()]
        if n.name in seen or n.type.kind == ValueKind.SPIKE:
            continue
        seen.add(n.name)
        temporal = n.opdef.temporal(n.attrs, [graph.nodes[i].type for i in n.inputs])
        if temporal == Temporal.STRUCTURAL and n.inputs:
            stack.extend(n.inputs)
            continue
        ins = [graph.nodes[i] for i in n.inputs]
        where = f"`{n.origin.module_path}`" if n.origin.module_path else "the model's forward()"
        of = " and ".join(_describe(i) for i in ins)
        chain.append(f"{_describe(n)} from the {n.op} at {where}" + (f" of {of}" if of else ""))
        if n.op in ("add", "sub", "shift", "rsub", "sum", "mean", "matmul", "mul", "scale"):
            stack.extend(i.name for i in reversed(ins) if i.type.kind != ValueKind.SPIKE)
    return chain


def _hint(graph: Graph, operand: Node) -> str:
    src = operand
    while src.opdef.temporal(src.attrs, [graph.nodes[i].type for i in src.inputs]) == \
            Temporal.STRUCTURAL and src.inputs:
        src = graph.nodes[src.inputs[0]]
    if src.op in ("add", "sub") and src.type.integer:
        return ("use a pre-activation, spike-driven residual as in Spikingformer: a LIF before "
                "this layer, so it sees spikes, and add the residual after BN")
    if src.op == "batchnorm" or src.op in ("linear", "conv2d", "conv1d"):
        return "insert a spiking neuron (LIF) between the two layers so this one sees spikes"
    if src.op in ("mean", "sum", "avgpool2d"):
        return "spike before this layer (a LIF after the pooling/averaging), or pool with max"
    return "feed this op spikes: put a spiking neuron (LIF) before it"


def averaged_spikes(graph: Graph, name: str) -> list[str] | None:
    """The averaging ops that made value `name` from spikes (see `_AVERAGING`), or None
    if some of it does not come from spikes that way."""
    ops: list[str] = []
    seen: set[str] = set()
    stack = [name]
    while stack:
        n = graph.nodes[stack.pop()]
        if n.name in seen or n.type.kind == ValueKind.SPIKE:
            continue
        seen.add(n.name)
        structural = n.opdef.temporal(n.attrs, [graph.nodes[i].type for i in n.inputs]) == \
            Temporal.STRUCTURAL
        if not n.inputs or not (structural or n.op in _AVERAGING):
            return None
        if not structural and n.op not in ops:
            ops.append(n.op)
        stack.extend(n.inputs)
    return ops


def _is_head(graph: Graph, g: nx.DiGraph, name: str, blockers: set[str]) -> bool:
    """No weight op and no neuron after `name`, and everything after it ends in an output."""
    after = nx.descendants(g, name)
    if after & blockers:
        return False
    return all(s in graph.outputs for s in after | {name} if g.out_degree(s) == 0)


def _readout_message(n: Node, operand: Node, via: list[str] | None) -> str:
    kind = f"{operand.type.kind.value} in {operand.type.range_text()}"
    if via is None:
        return f"{n.op} multiplies {operand.type.kind.value} values in the readout"
    how = f" (via {', '.join(via)})" if via else ""
    return (f"{n.op} is the classifier head fed averaged spikes{how}, {kind}; only the "
            "model's outputs come after it")


def _chain_violation(graph: Graph, n: Node, base: dict[str, object]) -> tuple[str, str] | None:
    """A weight op fed another's linear output: the message tail and hint naming the chain."""
    found = explain(graph, n)
    if found is None:
        return None
    chain, refusal = found
    text = (f"fed the linear output of {describe(chain.first)} with no neuron between; "
            f"not merged because {refusal.reason}")
    prov = base.get("provenance")
    base["provenance"] = [text] + (prov if isinstance(prov, list) else [])
    hint = "insert a spiking neuron (LIF) between the two layers so this one sees spikes"
    return text, hint + (f", or {refusal.fix}" if refusal.fix else "")


def _merged(graph: Graph) -> list[MergedChain]:
    entries = graph.meta.get("merged", [])
    return [MergedChain.model_validate({k: e[k] for k in MergedChain.model_fields})
            for e in (entries if isinstance(entries, list) else [])
            if isinstance(e, dict) and e.get("node") in graph.nodes]


def _recurrent_finding(n: Node) -> Finding:
    """A recurrent layer's own weights read its binary spikes of the step before: ACs."""
    return Finding.model_validate({
        "class": MulClass.AC, "node": n.name, "module_path": n.origin.module_path, "op": n.op,
        "operand_kinds": [ValueKind.SPIKE.value], "operand_ranges": [n.type.range_text()],
        "message": f"{n.op}'s recurrent weights fed its own spikes (of the step before): "
                   "accumulate only"})


def check_spike_only(graph: Graph) -> SpikeOnlyReport:
    """Classify every multiply in a canonicalized graph."""
    g = graph.to_networkx()
    weight_ops = {n.name for n in graph if n.opdef.multiplies == Multiplies.WEIGHT}
    blockers = weight_ops | {n.name for n in graph if n.opdef.is_neuron or n.opdef.feeds_back}
    after_readout: set[str] = set()
    for n in graph:
        if n.opdef.temporal(n.attrs, [graph.nodes[i].type for i in n.inputs]) == Temporal.REDUCE_TIME:
            after_readout |= nx.descendants(g, n.name)
    merged = {m.node: m for m in _merged(graph)}
    findings = []
    for n in graph:
        kind = n.opdef.multiplies
        if n.opdef.feeds_back:
            findings.append(_recurrent_finding(n))
            continue
        if kind == Multiplies.NONE:
            continue
        operands = [graph.nodes[i] for i in n.inputs]
        kinds = [o.type.kind for o in operands]
        tail = not (nx.descendants(g, n.name) & weight_ops)  # after the last weight op
        readout = n.name in after_readout or any(o.type.layout == Layout.STATIC for o in operands)
        via = None
        if kind == Multiplies.WEIGHT and _is_head(graph, g, n.name, blockers):
            via = averaged_spikes(graph, operands[0].name)
        base: dict[str, object] = dict(
            node=n.name, module_path=n.origin.module_path, op=n.op,
            operand_kinds=[k.value for k in kinds],
            operand_ranges=[o.type.range_text() for o in operands])
        if ValueKind.SPIKE in kinds:
            cls, msg, hint = MulClass.AC, f"{n.op} fed spikes: accumulate only", None
        elif kind == Multiplies.WEIGHT and kinds[0] == ValueKind.ANALOG_INPUT:
            cls, msg = MulClass.ENCODING_MAC, f"{n.op} encodes the analog input (direct encoding)"
            hint = None
        elif readout or via is not None or (tail and kind != Multiplies.WEIGHT):
            cls = MulClass.READOUT_MAC
            msg = _readout_message(n, operands[0], via) if kind == Multiplies.WEIGHT else \
                f"{n.op} multiplies {', '.join(k.value for k in kinds)} values in the readout"
            hint = None
            if kind == Multiplies.WEIGHT:
                hint = ("put a LIF before the classifier head so it sees spikes "
                        "(as the Spike-driven Transformer does)")
                if via is not None:
                    hint = ("the classifier head fed averaged spikes does one multiply per "
                            "weight; if it must accumulate only, " + hint)
        else:
            cls = MulClass.VIOLATION
            bad = next(o for o in operands if o.type.kind != ValueKind.SPIKE)
            msg = (f"{n.op} multiplies a {bad.type.kind.value} activation in "
                   f"{bad.type.range_text()}" + (" by a weight" if kind == Multiplies.WEIGHT
                                                 else " by a non-spike value"))
            hint = _hint(graph, bad)
            base["provenance"] = provenance(graph, bad.name)
            chain = _chain_violation(graph, n, base) if kind == Multiplies.WEIGHT else None
            if chain is not None:
                msg, hint = msg + ": " + chain[0], chain[1]
            elif base["provenance"]:
                msg += ": " + base["provenance"][0]  # type: ignore[index]
        if n.name in merged:
            msg += f" (merged from {' -> '.join(merged[n.name].chain)})"
        findings.append(Finding(cls=cls, message=msg, hint=hint, **base))  # type: ignore[arg-type,call-arg]
    return SpikeOnlyReport(findings=findings, merged=list(merged.values()))
