"""Absurd input shapes: tracing reads only the shape, so a huge --input-shape costs
no memory, and one that cannot be a tensor at all is one clear line (exit 2)."""

from __future__ import annotations

import subprocess
import sys

CKPT = "examples/checkpoints/spikingformer_digits.pt"


def _snncc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snncc.cli", *args], capture_output=True,
                          text=True, timeout=300)


_PEAK = """
import resource, subprocess, sys
r = subprocess.run([sys.executable, "-m", "snncc.cli", *sys.argv[1:]], capture_output=True)
print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def test_a_huge_input_shape_is_traced_without_allocating_it() -> None:
    r = subprocess.run([sys.executable, "-c", _PEAK, "inspect", CKPT, "--input-shape",
                        "4,1,1,20000,20000"], capture_output=True, text=True, timeout=300)
    code, peak_kib = (int(v) for v in r.stdout.split())
    assert code == 0, r.stderr
    # a real float32 example of that shape alone would take 6.4 GB
    assert peak_kib < 2_000_000, f"peak RSS {peak_kib} KiB"


def test_a_shape_that_cannot_be_a_tensor_is_one_line_and_exit_2() -> None:
    r = _snncc("inspect", CKPT, "--input-shape", "99999999999,99999999999,99999999999")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "SNN-IN002" in lines[0] and "Traceback" not in r.stderr
