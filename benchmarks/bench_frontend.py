"""Trace + canonicalize + spike-only check of ImageNet Spikingformer-8-768
(66 M parameters, random weights) on this machine; where the time goes.

Target (issue 2): under 5 s end to end on 2 cores.
"""

from __future__ import annotations

import time

import torch

from snncc.analysis.spike_only import check_spike_only
from snncc.frontends.torch import trace
from snncc.passes import CANONICALIZE, run_passes


def main() -> None:
    from snncc.examples.spikingformer import spikingformer_imagenet

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    model = spikingformer_imagenet(depth=8, dim=768).eval()
    t_build = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    x = torch.zeros(4, 1, 3, 224, 224)
    t0 = time.perf_counter()
    graph = trace(model, x)
    t_trace = time.perf_counter() - t0
    t0 = time.perf_counter()
    run = run_passes(graph, CANONICALIZE)
    t_canon = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = check_spike_only(run.graph)
    t_check = time.perf_counter() - t0
    total = t_trace + t_canon + t_check
    print(f"Spikingformer-8-768: {params / 1e6:.2f} M parameters, {len(graph)} traced nodes, "
          f"{len(run.graph)} canonical nodes (model construction {t_build:.2f} s, not counted)")
    print(f"  trace        {t_trace:7.3f} s")
    print(f"  canonicalize {t_canon:7.3f} s")
    print(f"  check        {t_check:7.3f} s   ({report.summary()})")
    print(f"  total        {total:7.3f} s   target < 5 s: {'met' if total < 5 else 'MISSED'}")
