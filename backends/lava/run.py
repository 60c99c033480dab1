"""Running a compiled model in real Lava: one sample, or predictions for a batch.

Two clocks. Lava's LIF adds its bias on every step, also on the steps before its
first input arrives (a layer at depth d gets d steps of bias ahead of its
input), which the trained, time-aligned model never does. An *aligned* run
(``run_lava``'s default) holds each LIF's bias at 0 and switches it on at the
step its first input arrives, pausing the runtime there; every layer then
computes, in its window of T steps, exactly acsim's default run (the digits
models' predictions are the trained model's). Built with ``aligned=False`` the
network runs from step 0 as one block: acsim's ``lava_timed`` mode.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snncc.backends.acsim.program import Program
from snncc.backends.acsim.simulator import class_predictions
from snncc.backends.lava.lowering import LavaPlan, plan
from snncc.backends.lava.network import build
from snncc.diagnostics import SnnccError
from snncc.ir.types import Layout
from snncc.passes.quantize import item_shape


@dataclass
class LavaRun:
    """Every neuron layer's spikes ``[T + depth, *item]`` of one sample, in Lava, and the
    step each layer's window of the model's T steps starts at."""

    spikes: dict[str, np.ndarray]
    steps: int
    starts: dict[str, int] = field(default_factory=dict)
    # each readout accumulator's running sum [T + depth, *item] (its last step: the total)
    accumulated: dict[str, np.ndarray] = field(default_factory=dict)

    def windows(self, T: int) -> dict[str, np.ndarray]:
        """Each layer's spikes in its own window ``[T, *item]``: on an aligned run, what
        the time-aligned model computes at steps 0..T-1."""
        return {k: v[self.starts[k]:self.starts[k] + T] for k, v in self.spikes.items()}

    def received(self, T: int | None = None) -> dict[str, np.ndarray]:
        """What each readout accumulator added per step (the differences of its running
        sum): in its window of T steps, or, on Lava's clock (``T`` None), the last
        ``steps`` (an accumulator behind a relay receives a step late)."""
        out = {}
        for k, v in self.accumulated.items():
            per_step = np.diff(v.astype(np.int64), axis=0, prepend=0).astype(np.int32)
            start = per_step.shape[0] - self.steps if T is None else self.starts[k]
            out[k] = per_step[start:start + (self.steps if T is None else T)]
        return out


def run_lava(program: Program, sample: np.ndarray, timeout_s: float | None = None,
             aligned: bool = True, p: LavaPlan | None = None) -> LavaRun:
    """Run one sample ``[T, *input item]`` through the Lava network of ``program`` in
    ``Loihi2SimCfg(select_tag='fixed_pt')`` (with snncc's faster model of Lava's Conv,
    :mod:`.procs.conv_model`) for T + depth steps (pausing where a layer's
    bias is switched on, for an ``aligned`` run); the runtime is always stopped (on
    success, on an exception, on SIGINT/SIGTERM, and at the first step boundary after
    ``timeout_s`` seconds, which is SNN-LAVA003)."""
    from snncc.backends.lava.chain import _kill_runtime, _Signalled
    from snncc.backends.lava.chain import _signals_stop_the_run as signals_stop

    p = plan(program) if p is None else p
    net = build(program, sample, aligned=aligned, p=p)
    from snncc.backends.lava.procs.conv_model import run_config

    qg = program.qg
    deadline = None if timeout_s is None else time.monotonic() + timeout_s

    def check(done: int) -> None:
        # between steps: a signal timer could fire inside Lava's fork handlers, where
        # Python drops exceptions
        if deadline is not None and time.monotonic() > deadline:
            raise SnnccError(
                "SNN-LAVA003", f"the Lava run exceeded its time limit of {timeout_s:g} s "
                f"(at step {done} of {net.steps}); it was stopped and its processes "
                "and shared memory freed",
                hint="give a larger --timeout, fewer samples, or run on --backend acsim")

    with signals_stop():
        try:
            net.run(run_config(), check if deadline is not None else None)
            def read(sink: Any, name: str) -> np.ndarray:
                data = np.moveaxis(np.asarray(sink.data.get()), -1, 0)
                return data.reshape(net.steps, *item_shape(qg.graph.nodes[name]))

            # the model's T + depth steps (a readout accumulator behind a relay needs one
            # more, for its sums only)
            keep = sample.shape[0] + max(p.latency.values(), default=0)
            out = {name: read(s, name)[:keep] != 0 for name, s in net.sinks.items()}
            sums = {name: read(s, name).astype(np.int64) for name, s in net.taps.items()}
        except _Signalled:
            _kill_runtime(net.root)
            raise
        finally:
            net.root.stop()
    return LavaRun(out, keep, net.starts, sums)


@dataclass
class LavaPredictions:
    """Per sample the model's outputs from Lava's spikes, and every layer's spikes."""

    outputs: np.ndarray  # the graph's first output (host floats), [B, ...] or [T, B, ...]
    spikes: list[dict[str, np.ndarray]]  # per sample, per neuron layer [T + depth, *item]
    accumulated: list[dict[str, np.ndarray]] = field(default_factory=list)  # per sample: totals
    starts: dict[str, int] = field(default_factory=dict)  # each layer's window start
    plan: LavaPlan | None = None  # the network every sample ran on
    time_first: bool = False  # outputs are [T, B, ...] (a head applied per step)

    def windows(self, T: int) -> list[dict[str, np.ndarray]]:
        """Per sample, each layer's spikes in its window of the model's T steps."""
        return [LavaRun(s, 0, self.starts).windows(T) for s in self.spikes]

    @property
    def predictions(self) -> np.ndarray:
        return class_predictions(self.outputs, self.time_first)


def predict(program: Program, inputs: np.ndarray,
            progress: Callable[[int, int], None] | None = None,
            timeout_s: float | None = None, aligned: bool = True) -> LavaPredictions:
    """Run each sample of ``inputs`` ``[T, B, ...]`` in Lava; the readout (host ops and
    readout accumulators) is computed by the host from what Lava's readout accumulators
    integrated (acsim's datapath for the ops after them, and, where the readout needs an
    op the Lava lowering lacks, from Lava's spikes). ``aligned`` (the default):
    biases start with each layer's first input and the readout reads every layer's
    window, so the predictions are the time-aligned model's (acsim's default run);
    else the whole network runs from step 0 and the readout is on Lava's clock
    (acsim's ``lava_timed`` run). ``spikes`` holds the full ``T + depth`` steps."""
    from snncc.backends.acsim.simulator import run_batch

    outs, spikes, totals = [], [], []
    p = plan(program)  # the same network for every sample
    T, total = inputs.shape[0], inputs.shape[1]
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    for b in range(total):
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise SnnccError("SNN-LAVA003", f"the Lava run exceeded its time limit of "
                             f"{timeout_s:g} s after {b} of {total} samples",
                             hint="give a larger --timeout, fewer samples, or run on "
                                  "--backend acsim")
        lava = run_lava(program, inputs[:, b], timeout_s=left, aligned=aligned, p=p)
        seen = lava.windows(T) if aligned else lava.spikes
        given = {k: v[:, np.newaxis] for k, v in seen.items()}
        received = lava.received(T if aligned else None)
        sums = {k: v[:, np.newaxis] for k, v in received.items()}
        _, (out, *_) = run_batch(program, inputs[:, b:b + 1], lava_timed=not aligned,
                                 given_spikes=given, given_values=sums)
        outs.append(np.asarray(out))
        spikes.append(lava.spikes)
        totals.append({k: v[-1] for k, v in lava.accumulated.items()})
        if progress is not None:
            progress(b + 1, total)
    time_first = program.graph.nodes[program.graph.outputs[0]].type.layout == Layout.TIME
    return LavaPredictions(np.concatenate(outs, axis=int(time_first)), spikes, totals,
                           lava.starts if total else {}, p, time_first)
