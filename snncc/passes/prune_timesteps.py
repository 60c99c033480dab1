"""prune-timesteps: remove the work of time steps that provably produce nothing.

A trained time-step mask silences a layer at some steps, but that alone does
not make the downstream work removable: a conv with a bias (a folded BN
shift) still drives the next neuron at a masked step, and a soft-reset neuron
can fire from leftover membrane charge. So the pass first proves, per node and
step, what the value can be:

    Z  provably all zeros
    N  provably <= 0 everywhere (a negative bias: cannot make a neuron fire)
    A  anything

and then schedules each node's steps:
- a weight op (conv, linear, matmul) runs only at steps whose input is not Z;
  at the others its output is known exactly (its bias, or zeros) and is filled
  in without a single synaptic operation;
- an elementwise op runs only at steps where some input is not Z;
- a neuron skips a step when its input is Z and it is still at rest (no input
  ever before: v stays v_reset exactly), or when nothing it emits from that step
  on can leave the layer (it never fires again, or its time mask is 0 from
  there on).
Outputs are bit-identical to the unpruned graph: the schedule only ever skips
work whose result is known. The schedule lives in `graph.meta["schedule"]`
(node -> executed steps), which the interpreter and backends honour.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snncc.ir.graph import Graph, Node
from snncc.ir.groups import ZERO_PRESERVING as ZERO_PRESERVING  # derived; kept importable
from snncc.ir.op import Multiplies
from snncc.ir.ops.elementwise import ScalarAttrs
from snncc.ir.ops.neurons import NeuronAttrs
from snncc.ir.ops.timemask import TimeMaskAttrs
from snncc.ir.types import Layout
from snncc.passes.manager import PassResult, register_pass

Z, N, A = "Z", "N", "A"
SCHEDULABLE = {"conv1d", "conv2d", "linear", "matmul", "add", "sub", "mul"}


def _quiet_at_rest(a: NeuronAttrs) -> bool:
    rest = 0.0 if a.v_reset is None else a.v_reset
    return a.v_threshold > rest


def _neuron_states(a: NeuronAttrs, s: list[str]) -> list[str]:
    if not _quiet_at_rest(a):
        return [A] * len(s)
    if a.v_reset is not None:  # hard reset: v < threshold after every step, so x <= 0 cannot fire
        return [Z if x in (Z, N) else A for x in s]
    out, fired_possible = [], False  # soft reset: leftover charge above threshold can fire later
    for x in s:
        fired_possible = fired_possible or x == A
        out.append(A if fired_possible else Z)
    return out


def _bias_state(node: Node) -> str:
    b = node.params.get("bias")
    if b is None or not np.any(b):
        return Z
    return N if float(b.max()) <= 0 else A


def step_states(graph: Graph) -> dict[str, list[str] | None]:
    """Per node, the provable content of each time step (None: no time axis)."""
    T = graph.time_steps
    st: dict[str, list[str] | None] = {}
    for n in graph:
        ins = [st.get(i) for i in n.inputs]
        if n.type.layout != Layout.TIME or n.type.shape[:1] != (T,) or any(
            x is None for x in ins
        ):
            st[n.name] = None if n.type.layout != Layout.TIME else [A] * T
            continue
        cols: list[list[str]] = [x for x in ins if x is not None]
        if n.op == "input":
            st[n.name] = [A] * T
        elif n.op == "time_mask":
            assert isinstance(n.attrs, TimeMaskAttrs)
            st[n.name] = [Z if m == 0 else x for m, x in zip(n.attrs.mask, cols[0])]
        elif n.opdef.is_neuron:
            assert isinstance(n.attrs, NeuronAttrs)
            st[n.name] = _neuron_states(n.attrs, cols[0])
        elif n.opdef.multiplies == Multiplies.WEIGHT:
            st[n.name] = [_bias_state(n) if x == Z else A for x in cols[0]]
        elif n.op in ("mul", "matmul"):
            st[n.name] = [Z if Z in xs else A for xs in zip(*cols)]
        elif n.op == "add":
            st[n.name] = [_join_add(xs) for xs in zip(*cols)]
        elif n.op == "scale":
            assert isinstance(n.attrs, ScalarAttrs)
            c = n.attrs.value
            st[n.name] = [x if x == Z or c > 0 else A for x in cols[0]]
        elif n.opdef.preserves_zero(n.attrs):  # zeros stay zeros; <= 0 stays so if monotone
            st[n.name] = [Z if all(x == Z for x in xs) else
                          (N if all(x in (Z, N) for x in xs) and n.opdef.monotone else A)
                          for xs in zip(*cols)]
        else:
            st[n.name] = [A] * T
    return st


def _join_add(xs: tuple[str, ...]) -> str:
    if all(x == Z for x in xs):
        return Z
    if all(x in (Z, N) for x in xs):
        return N
    return A


def schedule(graph: Graph, st: dict[str, list[str] | None]) -> dict[str, list[int]]:
    """Node -> the steps whose work must run (only nodes that skip some step)."""
    T = graph.time_steps
    out: dict[str, list[int]] = {}
    users = graph.users_map()
    for n in graph:
        if st.get(n.name) is None:
            continue
        ins = [st[i] for i in n.inputs]
        if n.opdef.is_neuron:
            # what leaves the layer: through its time mask, if it has one
            nxt = users[n.name]
            visible = nxt[0].name if len(nxt) == 1 and nxt[0].op == "time_mask" else n.name
            s, o = ins[0], st[visible]
            assert s is not None and o is not None
            at_rest = [all(x == Z for x in s[: t + 1]) for t in range(T)]
            silent_after = [all(x == Z for x in o[t:]) for t in range(T)]
            steps = [t for t in range(T) if not (at_rest[t] or silent_after[t])]
        elif n.op in SCHEDULABLE and all(x is not None for x in ins):
            need = all if n.op in ("mul", "matmul") else any  # a product with a zero is zero
            steps = [t for t in range(T) if need(x[t] != Z for x in ins if x is not None)]
        else:
            continue
        if len(steps) < T:
            out[n.name] = steps
    return out


def _per_step_work(graph: Graph, n: Node) -> tuple[int, int]:
    T = graph.time_steps
    c = n.opdef.cost(n.attrs, [graph.nodes[i].type for i in n.inputs], n.type, n.params)
    return c.synapses // T, c.neuron_updates // T


def timestep_report(graph: Graph, st: dict[str, list[str] | None],
                    sched: dict[str, list[int]]) -> dict[str, Any]:
    """Per neuron layer: the steps its trained mask keeps (`per_layer`, all steps
    when unmasked), the steps at which it can really emit a spike
    (`per_layer_effective`, proven), and the steps whose neuron update was
    removed (`pruned`). `average` is the paper's average time steps (Datta et
    al.: the mean over neuron layers of active steps); `average_effective` the
    same over proven-active steps. Also the scheduled synaptic ops (ACs) and
    neuron updates before and after pruning."""
    T = graph.time_steps
    users = graph.users_map()
    per_layer: dict[str, list[int]] = {}
    effective: dict[str, list[int]] = {}
    pruned: dict[str, list[int]] = {}
    for n in graph:
        if not n.opdef.is_neuron or st.get(n.name) is None:
            continue
        key = n.origin.module_path or n.name
        out = st[n.name]
        nxt = users[n.name]
        active = list(range(T))
        if len(nxt) == 1 and nxt[0].op == "time_mask":  # the layer's spikes as they leave it
            assert isinstance(nxt[0].attrs, TimeMaskAttrs)
            active = [t for t, m in enumerate(nxt[0].attrs.mask) if m]
            out = st[nxt[0].name]
        assert out is not None
        per_layer[key] = active
        effective[key] = [t for t in range(T) if out[t] != Z]
        executed = sched.get(n.name, list(range(T)))
        pruned[key] = [t for t in range(T) if t not in executed]
    syn_before = syn_after = upd_before = upd_after = 0
    kept: list[str] = []
    for n in graph:
        syn, upd = _per_step_work(graph, n)
        steps = sched.get(n.name, list(range(T)))
        syn_before += syn * T
        upd_before += upd * T
        syn_after += syn * len(steps)
        upd_after += upd * len(steps)
        s = st.get(n.name)
        src = [st.get(i) for i in n.inputs]
        if n.opdef.multiplies == Multiplies.WEIGHT and s is not None and src and src[0] is not None:
            for t in range(T):
                if src[0][t] == Z and s[t] == A:
                    kept.append(f"{n.origin.module_path or n.name} step {t}: input masked, but "
                                "its bias (a folded BN shift) can still drive the next neuron")
    def mean_steps(d: dict[str, list[int]]) -> float:
        return float(np.mean([len(v) for v in d.values()])) if d else float(T)

    return {
        "T": T,
        "average": mean_steps(per_layer),
        "average_effective": mean_steps(effective),
        "per_layer": per_layer,
        "per_layer_effective": effective,
        "pruned": pruned,
        "synaptic_ops_before": syn_before,
        "synaptic_ops_after": syn_after,
        "neuron_updates_before": upd_before,
        "neuron_updates_after": upd_after,
        "kept": kept,
    }


@register_pass("prune-timesteps")
def prune_timesteps(graph: Graph) -> PassResult:
    st = step_states(graph)
    sched = schedule(graph, st)
    graph.meta["schedule"] = sched
    report = timestep_report(graph, st, sched)
    graph.meta["timesteps"] = report
    notes = [f"average time steps {report['average']:.2f} of T={graph.time_steps}; scheduled "
             f"synaptic ops {report['synaptic_ops_before']:,} -> {report['synaptic_ops_after']:,}"]
    return PassResult(graph, bool(sched), notes + report["kept"][:5])
