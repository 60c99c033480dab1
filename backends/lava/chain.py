"""Build and run a chain of real Lava processes: the oracle for acsim.

Why: acsim's kernels claim to be bit-exact to Lava's ``fixed_pt`` models; the
only honest check is to run the same network in Lava itself. This module turns
the layer specs that acsim uses (:class:`DenseSpec`/:class:`ConvSpec` +
:class:`LifSpec`) into Lava processes

    RingBuffer source -> (Dense|Conv -> LIF) x L, each LIF -> RingBuffer sink
                                                   (+ Monitors on u and v)

runs them with ``Loihi2SimCfg(select_tag="fixed_pt")`` for a number of steps,
and returns spikes (and u, v) per layer per step as numpy arrays, time first.
The runtime (one OS process per Lava process) is always stopped, even when
building or running fails, and on SIGINT/SIGTERM (:func:`_signals_stop_the_run`).

Lava is slow (about 0.2 ms per process per step plus a few seconds to start),
so keep oracle networks small.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from snncc.backends.acsim.chain import (
    DenseSpec,
    LifSpec,
    SynSpec,
)
from snncc.backends.acsim.fixedpoint import (
    SignMode,
)


@dataclass
class LavaChainResult:
    """Records ``[num_steps, *layer_shape]`` of the layers listed in ``layers``
    (all by default), in that order; u and v are empty unless recorded."""

    layers: list[int] = field(default_factory=list)
    spikes: list[np.ndarray] = field(default_factory=list)
    v: list[np.ndarray] = field(default_factory=list)
    u: list[np.ndarray] = field(default_factory=list)
    run_s: float = 0.0  # wall time of all run calls (compile, start-up and steps)
    chunk_s: list[float] = field(default_factory=list)  # wall time of each run call


def _import_lava_runtime() -> None:
    """Import Lava's message infrastructure, which calls ``multiprocessing.set_start_method
    ("fork")`` at import time and so fails once anything has fixed the start method --
    numba's threading layer does, when acsim first runs a parallel kernel. Setting the
    method Lava wants when it is already in force is harmless, so that one call is
    let through; any other start method is an error Lava would have raised anyway."""
    import multiprocessing

    original = multiprocessing.set_start_method

    def set_unless_same(method: str | None, force: bool = False) -> None:
        if not force and multiprocessing.get_start_method(allow_none=True) == method:
            return
        original(method, force)

    multiprocessing.set_start_method = set_unless_same  # type: ignore[assignment]
    try:
        import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401
    finally:
        multiprocessing.set_start_method = original  # type: ignore[assignment]


def _lava_sign_mode(mode: SignMode | None) -> Any:
    if mode is None:
        return None
    from lava.utils.weightutils import SignMode as LavaSignMode

    return LavaSignMode(mode.value)


def _build_synapse(spec: SynSpec) -> Any:
    if isinstance(spec, DenseSpec):
        from lava.proc.dense.process import Dense

        kwargs: dict[str, Any] = {
            "weight_exp": int(spec.weight_exp),
            "num_weight_bits": int(spec.num_weight_bits),
        }
        mode = _lava_sign_mode(spec.sign_mode)
        if mode is not None:
            kwargs["sign_mode"] = mode
        return Dense(
            weights=np.asarray(spec.weights),
            num_message_bits=int(spec.num_message_bits),
            **kwargs,
        )
    from lava.proc.conv.process import Conv

    return Conv(
        weight=np.asarray(spec.weight),
        input_shape=tuple(int(i) for i in spec.input_shape),
        stride=tuple(spec.stride),
        padding=tuple(spec.padding),
        dilation=tuple(spec.dilation),
        groups=int(spec.groups),
        weight_exp=int(spec.weight_exp),
        num_message_bits=int(spec.num_message_bits),
    )


def run_lava_chain(
    layers: Sequence[tuple[SynSpec, LifSpec]],
    inputs: ArrayLike,
    *,
    num_steps: int | None = None,
    record_state: bool = True,
    record_layers: Sequence[int] | None = None,
    chunks: Sequence[int] | None = None,
) -> LavaChainResult:
    """Run ``inputs`` ``[T, *in_shape]`` (integers; nonzero = spike, or graded
    payloads) through the chain in Lava ``fixed_pt`` for ``num_steps`` (default T;
    inputs are zero-padded, since Lava's source would otherwise repeat them).

    Spikes come back as bool, u and v as int32, all ``[num_steps, *shape]``.
    ``record_layers`` limits the sinks and monitors to some layers: each adds
    Lava processes, so a timing run should record few. ``chunks`` splits the
    run into consecutive ``run`` calls of those step counts (summing to
    ``num_steps``) on the same runtime: only the first pays compilation and
    start-up, so the others time the steps alone (``chunk_s``).
    """
    _import_lava_runtime()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    if not layers:
        raise ValueError("a chain needs at least one layer")
    x = np.asarray(inputs)
    in_shape = layers[0][0].in_shape
    if tuple(x.shape[1:]) != tuple(in_shape):
        raise ValueError(f"inputs must be [T, {in_shape}], got {x.shape}")
    steps = int(num_steps) if num_steps is not None else x.shape[0]
    if steps < x.shape[0]:
        x = x[:steps]
    parts = [steps] if chunks is None else [int(c) for c in chunks]
    if sum(parts) != steps or min(parts) < 1:
        raise ValueError(f"chunks {parts} must be positive and sum to num_steps={steps}")
    data = np.zeros((*in_shape, steps), dtype=np.int32)
    data[..., : x.shape[0]] = np.moveaxis(x.astype(np.int32), 0, -1)

    source = Source(data=data)
    prev_port: Any = source.s_out
    prev_shape: tuple[int, ...] = tuple(in_shape)
    n_layers = len(layers)
    recorded = list(range(n_layers)) if record_layers is None else sorted({int(k) % n_layers for k in record_layers})
    lifs, sinks, monitors = [], [], []
    for k, (syn_spec, lif_spec) in enumerate(layers):
        syn = _build_synapse(syn_spec)
        want = tuple(syn_spec.in_shape)
        if prev_shape != want:
            if int(np.prod(prev_shape)) != int(np.prod(want)):
                raise ValueError(f"layer expects {want} but gets {prev_shape}")
            prev_port = prev_port.reshape(want)
        prev_port.connect(syn.s_in)
        shape = tuple(syn_spec.out_shape)
        lif = LIF(
            shape=shape,
            du=int(lif_spec.du),
            dv=int(lif_spec.dv),
            vth=int(lif_spec.vth),
            bias_mant=lif_spec.bias_mant,
            bias_exp=lif_spec.bias_exp,
            u=lif_spec.u0,
            v=lif_spec.v0,
        )
        syn.a_out.connect(lif.a_in)
        if k in recorded:
            sink = Sink(shape=shape, buffer=steps)
            lif.s_out.connect(sink.a_in)
            if record_state:
                mon_v, mon_u = Monitor(), Monitor()
                mon_v.probe(lif.v, steps)
                mon_u.probe(lif.u, steps)
                monitors.append((mon_v, mon_u))
            lifs.append(lif)
            sinks.append(sink)
        prev_port, prev_shape = lif.s_out, shape

    result = LavaChainResult(layers=recorded)
    with _signals_stop_the_run():
        try:
            cfg = Loihi2SimCfg(select_tag="fixed_pt")
            for part in parts:
                t0 = time.perf_counter()
                source.run(condition=RunSteps(num_steps=part), run_cfg=cfg)
                result.chunk_s.append(time.perf_counter() - t0)
            result.run_s = sum(result.chunk_s)
            for k, (lif, sink) in enumerate(zip(lifs, sinks)):
                result.spikes.append(np.moveaxis(np.asarray(sink.data.get()), -1, 0) != 0)
                if record_state:
                    mon_v, mon_u = monitors[k]
                    result.v.append(np.asarray(mon_v.get_data()[lif.name]["v"]).astype(np.int32))
                    result.u.append(np.asarray(mon_u.get_data()[lif.name]["u"]).astype(np.int32))
        except _Signalled:
            _kill_runtime(source)
            raise
        finally:
            source.stop()
    return result


class _Signalled(BaseException):
    """SIGINT or SIGTERM arrived during a run (re-delivered once the runtime is gone)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def _signals_stop_the_run() -> Iterator[None]:
    """While Lava runs, SIGINT and SIGTERM raise :class:`_Signalled` in this process only.

    Why: Ctrl-C reaches the whole process group. Lava's workers are forked from here and
    inherit this handler, so they ignore the signal instead of dying mid-step (then the
    runtime's stop waits forever for their answer, and the shared memory is never freed);
    this process kills them and frees the memory (``_kill_runtime``), then the signal is
    delivered again with the previous handlers (KeyboardInterrupt, or termination)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    owner = os.getpid()

    def handler(signum: int, frame: object) -> None:
        if os.getpid() == owner:
            raise _Signalled(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    signalled = None
    try:
        yield
    except _Signalled as e:
        signalled = e.signum
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if signalled is not None:
        try:
            signal.raise_signal(signalled)
        except BaseException as e:  # the previous handler's KeyboardInterrupt, say
            raise e.with_traceback(None) from None
        raise KeyboardInterrupt  # a handler that returned: the caller still must stop


def _kill_runtime(source: Any) -> None:
    """Kill a signalled run's worker processes and free its shared memory, without the
    runtime's own stop (which waits for workers that may be mid-step). Uses Lava 0.10.0's
    runtime internals; afterwards ``source.stop()`` has nothing left to wait for."""
    runtime = getattr(source, "runtime", None)
    if runtime is None:  # interrupted while compiling: no processes yet
        return
    infrastructure = getattr(runtime, "_messaging_infrastructure", None)
    for actor in getattr(infrastructure, "actors", []):
        if actor.is_alive():
            actor.kill()
        actor.join()
    smm = getattr(infrastructure, "smm", None)
    if smm is not None:
        smm.shutdown()  # the manager unlinks every segment it made
    runtime._is_started = False  # nothing to tell: stop() only releases what is left
