"""Lava processes of snncc's own, for the ops Lava's library lacks (pooling, spike products).

Why one generic process: a max-pool of spikes, a spike x spike product (AND,
then count) and a count x spike product (select, then sum) are each a small
piece of acsim's integer datapath; the process receives its inputs as flat
integer vectors, rebuilds acsim's arrays, runs acsim's own code for the ops it
stands for (``fn``), and sends the result flat. So its arithmetic *is* acsim's,
and the Lava network differs from acsim's Lava-timed run only where Lava's own
processes (Dense, LIF) would. A process marked ``delayed`` behaves like a
Dense (it sends last step's result, then computes this step's): a synapse
layer on Lava's clock; otherwise it computes and sends in the same step.

Lava finds the model below because it lives in the process's own module.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

Fn = Callable[[list[np.ndarray], int], np.ndarray]  # (flat inputs, step from 0) -> output


class SnnccOp(AbstractProcess):
    """``out = fn([in0, in1], t)`` per step ``t``, on flat int32 vectors (a one-input op leaves
    ``in1`` unconnected, and Lava receives zeros there)."""

    def __init__(self, *, in_sizes: tuple[int, int], out_size: int, fn: Fn, delayed: bool,
                 in_delays: tuple[int, int] = (0, 0), name: str | None = None) -> None:
        super().__init__(in_sizes=in_sizes, out_size=out_size, fn=fn, delayed=delayed,
                         in_delays=in_delays, name=name)
        self.in0 = InPort(shape=(in_sizes[0],))
        self.in1 = InPort(shape=(in_sizes[1],))
        self.out = OutPort(shape=(out_size,))


@implements(proc=SnnccOp, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySnnccOpModel(PyLoihiProcessModel):
    in0: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    in1: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def __init__(self, proc_params: Any) -> None:
        super().__init__(proc_params)
        self.fn: Fn = proc_params["fn"]
        self.delayed: bool = proc_params["delayed"]
        self.buffer = np.zeros(proc_params["out_size"], dtype=np.int32)
        # an input that arrives early waits here (the delays of a join, as DelayDense's)
        self.fifos = [deque(np.zeros(n, dtype=np.int32) for _ in range(d))
                      for n, d in zip(proc_params["in_sizes"], proc_params["in_delays"])]

    def run_spk(self) -> None:
        if self.delayed:
            self.out.send(self.buffer)
        xs = [self.in0.recv(), self.in1.recv()]
        for k, fifo in enumerate(self.fifos):
            if fifo:
                fifo.append(xs[k])
                xs[k] = fifo.popleft()
        result = np.asarray(self.fn(xs, self.time_step - 1), dtype=np.int32).reshape(-1)
        if self.delayed:
            self.buffer = result
        else:
            self.out.send(result)
