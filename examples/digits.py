"""The digits data set (scikit-learn ships it: no download), split and encoded.

Direct encoding: the 8x8 image, scaled to [0, 1], is repeated over T time steps.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def load_digits_split(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test); images [N, 1, 8, 8] in [0, 1]; a fixed 80/20 split."""
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.2, random_state=seed,
                                          stratify=d.target)
    return (torch.from_numpy(xtr), torch.from_numpy(ytr).long(), torch.from_numpy(xte),
            torch.from_numpy(yte).long())


def encode(x: torch.Tensor, T: int = 4) -> torch.Tensor:
    """[B, C, H, W] -> [T, B, C, H, W]: the image at every time step."""
    return x.unsqueeze(0).repeat(T, 1, 1, 1, 1)
