"""Op groups, derived from the op table: the one place that turns each op's flags into
the sets of op names that passes and backends test membership in.

Why groups are derived, not written out: an op's facts (does it multiply a weight, is it
a neuron, is it a relabeling, does it keep zeros) live on its definition
(:mod:`snncc.ir.op`); a hand-written tuple elsewhere goes stale when an op is added and
can disagree with another list about the same op. A group is a live view of ``OPS``, so
an op registered later (a user's neuron) is in it too. ``tests/test_op_groups.py`` checks
each flag against the op's reference semantics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Set

from snncc.ir import ops as _ops  # noqa: F401  (registers the op table)
from snncc.ir.op import OPS, Multiplies, OpDef


class OpGroup(Set[str]):
    """The names of the registered ops for which ``member(opdef)`` holds, read at each use."""

    def __init__(self, name: str, member: Callable[[type[OpDef]], bool]) -> None:
        self.name = name
        self._member = member

    def __contains__(self, op: object) -> bool:
        d = OPS.get(op) if isinstance(op, str) else None
        return d is not None and self._member(d)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(n for n, d in OPS.items() if self._member(d)))

    def __len__(self) -> int:
        return sum(1 for d in OPS.values() if self._member(d))

    def __repr__(self) -> str:
        return f"{self.name}{{{', '.join(self)}}}"


# activation x trained weight: conv1d, conv2d, linear
WEIGHT_OPS = OpGroup("WEIGHT_OPS", lambda d: d.multiplies == Multiplies.WEIGHT)
# the stateful spiking neurons: lif, if, plif
NEURON_OPS = OpGroup("NEURON_OPS", lambda d: d.is_neuron)
# relabelings, which a chip applies per sample by addressing (identity, reshape, flatten,
# transpose, permute, unsqueeze); repeat copies elements and is not one
STRUCTURAL_OPS = OpGroup("STRUCTURAL_OPS", lambda d: d.relabels)
# all-zero in, all-zero out for any attributes (pad only for some: OpDef.preserves_zero)
ZERO_PRESERVING = OpGroup("ZERO_PRESERVING", lambda d: d.zero_preserving)

__all__ = ["NEURON_OPS", "STRUCTURAL_OPS", "WEIGHT_OPS", "ZERO_PRESERVING", "OpGroup"]
