"""A faster fixed-point model for Lava's own ``Conv`` process, with Lava's arithmetic.

Why: Lava 0.10.0 ships its Conv models with the torch path switched off
(``TORCH_IS_AVAILABLE = False`` in ``lava/proc/conv/utils.py``), so every step
runs ``scipy.signal.convolve2d`` once per (input, output) channel pair: 5 s
per step for SpikingJelly's ResNet-18 at 16x16 here. This model computes the
same integers -- a true convolution with Lava's (W, H, C) layouts, stride,
padding, dilation and groups, then Lava's 24-bit wrap -- as one integer matrix
product per kernel tap. It replaces Lava's model through the run config's
``exception_proc_model_map`` (:func:`run_config`); the process, its ports and its
variables are Lava's. ``tests/test_lava_timed.py`` checks it against Lava's own
``utils.conv`` on random kernels and geometries.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.conv.models import PyConvModelFixed
from lava.proc.conv.process import Conv


def lava_conv(x: np.ndarray, weight: np.ndarray, stride: Any, padding: Any, dilation: Any,
              groups: int) -> np.ndarray:
    """Lava's ``utils.conv``: ``x`` (W, H, C), ``weight`` (C_out, kx, ky, C_in/groups)
    convolved (the kernel flipped), (x, y)-ordered geometry; int64 (W', H', C_out)."""
    img = np.asarray(x, dtype=np.int64).transpose(2, 1, 0)  # C, H, W
    k = np.asarray(weight, dtype=np.int64)[:, ::-1, ::-1, :].transpose(0, 3, 2, 1)
    (sx, sy), (px, py), (dx, dy) = (tuple(int(v) for v in g) for g in (stride, padding, dilation))
    img = np.pad(img, ((0, 0), (py, py), (px, px)))
    c_out, c_in, kh, kw = k.shape
    ho = (img.shape[1] - dy * (kh - 1) - 1) // sy + 1
    wo = (img.shape[2] - dx * (kw - 1) - 1) // sx + 1
    out = np.zeros((c_out, ho, wo), dtype=np.int64)
    per_out = c_out // groups
    for a in range(kh):
        for b in range(kw):
            patch = img[:, a * dy:a * dy + (ho - 1) * sy + 1:sy, b * dx:b * dx + (wo - 1) * sx + 1:sx]
            for g in range(groups):
                rows = slice(g * per_out, (g + 1) * per_out)
                taps = patch[g * c_in:(g + 1) * c_in].reshape(c_in, -1)
                out[rows] += (k[rows, :, a, b] @ taps).reshape(per_out, ho, wo)
    return out.transpose(2, 1, 0)


@implements(proc=Conv, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "snncc_fast")
class PyConvModelFast(PyConvModelFixed):
    """Lava's fixed-point Conv model with the convolution computed as tap-wise integer
    matrix products (same result, same 24-bit wrap)."""

    def run_spk(self) -> None:
        self.a_out.send(self.a_buf)  # type: ignore[has-type]
        s_in = self.s_in.recv()
        if self.num_message_bits.item() == 0:
            s_in = s_in.astype(bool)
        a_out = lava_conv(s_in, self.weight, self.stride, self.padding, self.dilation,
                          int(self.groups[0]))
        self.a_buf = self.clamp_precision(a_out).astype(np.int32)


def run_config() -> Any:
    """``Loihi2SimCfg(select_tag='fixed_pt')`` with this model for Lava's Conv."""
    from lava.magma.core.run_configs import Loihi2SimCfg

    return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map={Conv: PyConvModelFast})
