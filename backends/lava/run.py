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

import numpy as np

from snncc.backends.acsim.program import Program
from snncc.backends.lava.network import build
from snncc.diagnostics import SnnccError
from snncc.passes.quantize import item_shape


@dataclass
class LavaRun:
    """Every neuron layer's spikes ``[T + depth, *item]`` of one sample, in Lava, and the
    step each layer's window of the model's T steps starts at."""

    spikes: dict[str, np.ndarray]
    steps: int
    starts: dict[str, int] = field(default_factory=dict)

    def windows(self, T: int) -> dict[str, np.ndarray]:
        """Each layer's spikes in its own window ``[T, *item]``: on an aligned run, what
        the time-aligned model computes at steps 0..T-1."""
        return {k: v[self.starts[k]:self.starts[k] + T] for k, v in self.spikes.items()}


def run_lava(program: Program, sample: np.ndarray, timeout_s: float | None = None,
             aligned: bool = True) -> LavaRun:
    """Run one sample ``[T, *input item]`` through the Lava network of ``program`` in
    ``Loihi2SimCfg(select_tag='fixed_pt')`` for T + depth steps (pausing where a layer's
    bias is switched on, for an ``aligned`` run); the runtime is always stopped (on
    success, on an exception, on SIGINT/SIGTERM, and at the first step boundary after
    ``timeout_s`` seconds, which is SNN-LAVA003)."""
    from lava.magma.core.run_configs import Loihi2SimCfg

    from snncc.backends.lava.chain import _kill_runtime, _Signalled
    from snncc.backends.lava.chain import _signals_stop_the_run as signals_stop

    net = build(program, sample, aligned=aligned)
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
            net.run(Loihi2SimCfg(select_tag="fixed_pt"), check if deadline is not None else None)
            out = {name: np.moveaxis(np.asarray(s.data.get()), -1, 0).reshape(
                net.steps, *item_shape(qg.graph.nodes[name])) != 0 for name, s in net.sinks.items()}
        except _Signalled:
            _kill_runtime(net.root)
            raise
        finally:
            net.root.stop()
    return LavaRun(out, net.steps, net.starts)


@dataclass
class LavaPredictions:
    """Per sample the model's outputs from Lava's spikes, and every layer's spikes."""

    outputs: np.ndarray  # [B, ...] the graph's first output (host floats)
    spikes: list[dict[str, np.ndarray]]  # per sample, per neuron layer [T + depth, *item]
    starts: dict[str, int] = field(default_factory=dict)  # each layer's window start

    def windows(self, T: int) -> list[dict[str, np.ndarray]]:
        """Per sample, each layer's spikes in its window of the model's T steps."""
        return [LavaRun(s, 0, self.starts).windows(T) for s in self.spikes]

    @property
    def predictions(self) -> np.ndarray:
        return self.outputs.reshape(self.outputs.shape[0], -1).argmax(axis=-1)


def predict(program: Program, inputs: np.ndarray,
            progress: Callable[[int, int], None] | None = None,
            timeout_s: float | None = None, aligned: bool = True) -> LavaPredictions:
    """Run each sample of ``inputs`` ``[T, B, ...]`` in Lava; the readout (host ops and
    readout accumulators) is computed from Lava's spikes by acsim's integer datapath,
    since no Lava process of snncc's own computes it yet. ``aligned`` (the default):
    biases start with each layer's first input and the readout reads every layer's
    window, so the predictions are the time-aligned model's (acsim's default run);
    else the whole network runs from step 0 and the readout is on Lava's clock
    (acsim's ``lava_timed`` run). ``spikes`` holds the full ``T + depth`` steps."""
    from snncc.backends.acsim.simulator import run_batch

    outs, spikes = [], []
    T, total = inputs.shape[0], inputs.shape[1]
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    for b in range(total):
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise SnnccError("SNN-LAVA003", f"the Lava run exceeded its time limit of "
                             f"{timeout_s:g} s after {b} of {total} samples",
                             hint="give a larger --timeout, fewer samples, or run on "
                                  "--backend acsim")
        lava = run_lava(program, inputs[:, b], timeout_s=left, aligned=aligned)
        seen = lava.windows(T) if aligned else lava.spikes
        given = {k: v[:, np.newaxis] for k, v in seen.items()}
        _, (out, *_) = run_batch(program, inputs[:, b:b + 1], lava_timed=not aligned,
                                 given_spikes=given)
        outs.append(np.asarray(out).reshape(1, -1))
        spikes.append(lava.spikes)
        if progress is not None:
            progress(b + 1, total)
    return LavaPredictions(np.concatenate(outs), spikes, lava.starts if total else {})
