"""Spikingformer (Zhou et al., arXiv 2304.11954), written as its public code is.

Pre-activation order everywhere, LIF -> conv -> BN (FACTS.md section 4): every
conv sees binary spikes except the first (the image); the residual stream is a
float sum of BN outputs, and a LIF at the start of each branch turns it back
into spikes. So the model is spike-driven, apart from the encoding conv and
the head (a float mean). The unused LayerNorms of the original are kept so the
parameter count matches.

Difference from the original: `forward` takes [T, B, C, H, W] (the caller
repeats the image over time).
"""

from __future__ import annotations

import torch
from spikingjelly.clock_driven.neuron import MultiStepLIFNode
from torch import nn


def lif(v_threshold: float = 1.0) -> MultiStepLIFNode:
    return MultiStepLIFNode(tau=2.0, v_threshold=v_threshold, detach_reset=True, backend="torch")


class MLP(nn.Module):
    def __init__(self, in_features: int, hidden_features: int) -> None:
        super().__init__()
        self.mlp1_lif = lif()
        self.mlp1_conv = nn.Conv1d(in_features, hidden_features, kernel_size=1, stride=1)
        self.mlp1_bn = nn.BatchNorm1d(hidden_features)
        self.mlp2_lif = lif()
        self.mlp2_conv = nn.Conv1d(hidden_features, in_features, kernel_size=1, stride=1)
        self.mlp2_bn = nn.BatchNorm1d(in_features)
        self.c_hidden = hidden_features
        self.c_output = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, N = x.shape
        x = self.mlp1_lif(x)
        x = self.mlp1_conv(x.flatten(0, 1))
        x = self.mlp1_bn(x).reshape(T, B, self.c_hidden, N)
        x = self.mlp2_lif(x)
        x = self.mlp2_conv(x.flatten(0, 1))
        x = self.mlp2_bn(x).reshape(T, B, C, N)
        return x


class SpikingSelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        assert dim % num_heads == 0
        self.dim = dim
        self.num_heads = num_heads
        self.scale = 0.125
        self.proj_lif = lif()
        for name in ("q", "k", "v"):
            setattr(self, f"{name}_conv", nn.Conv1d(dim, dim, kernel_size=1, stride=1, bias=False))
            setattr(self, f"{name}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{name}_lif", lif())
        self.attn_lif = lif(v_threshold=0.5)
        self.proj_conv = nn.Conv1d(dim, dim, kernel_size=1, stride=1)
        self.proj_bn = nn.BatchNorm1d(dim)

    def _qkv(self, x_for_qkv: torch.Tensor, name: str, T: int, B: int, C: int, N: int) -> torch.Tensor:
        conv, bn, sn = (getattr(self, f"{name}_{p}") for p in ("conv", "bn", "lif"))
        out = bn(conv(x_for_qkv)).reshape(T, B, C, N)
        out = sn(out)
        return out.transpose(-1, -2).reshape(T, B, N, self.num_heads, C // self.num_heads) \
            .permute(0, 1, 3, 2, 4).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, N = x.shape
        x = self.proj_lif(x)
        x_for_qkv = x.flatten(0, 1)
        q = self._qkv(x_for_qkv, "q", T, B, C, N)
        k = self._qkv(x_for_qkv, "k", T, B, C, N)
        v = self._qkv(x_for_qkv, "v", T, B, C, N)
        attn = q @ k.transpose(-2, -1)
        x = (attn @ v) * self.scale
        x = x.transpose(3, 4).reshape(T, B, C, N).contiguous()
        x = self.attn_lif(x)
        x = x.flatten(0, 1)
        x = self.proj_bn(self.proj_conv(x)).reshape(T, B, C, N)
        return x


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)  # unused in forward, as in the original
        self.attn = SpikingSelfAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)  # unused in forward, as in the original
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        x = x + self.mlp(x)
        return x


class SpikingTokenizer(nn.Module):
    """Conv-BN on the image, then four LIF -> [MaxPool] -> conv -> BN stages;
    `pools[i]` puts a MaxPool(3, 2, 1) before the conv of stage i + 1."""

    def __init__(self, in_channels: int, embed_dims: int, pools: tuple[bool, ...]) -> None:
        super().__init__()
        widths = [in_channels, embed_dims // 8, embed_dims // 4, embed_dims // 2, embed_dims,
                  embed_dims]
        self.proj_conv = nn.Conv2d(in_channels, widths[1], 3, 1, 1, bias=False)
        self.proj_bn = nn.BatchNorm2d(widths[1])
        for i in range(1, 5):
            setattr(self, f"proj{i}_lif", lif())
            if pools[i - 1]:
                setattr(self, f"proj{i}_mp", nn.MaxPool2d(3, 2, 1))
            setattr(self, f"proj{i}_conv", nn.Conv2d(widths[i], widths[i + 1], 3, 1, 1, bias=False))
            setattr(self, f"proj{i}_bn", nn.BatchNorm2d(widths[i + 1]))
        self.pools = pools

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.proj_conv(x.flatten(0, 1))
        x = self.proj_bn(x).reshape(T, B, -1, H, W)
        for i in range(1, 5):
            x = getattr(self, f"proj{i}_lif")(x).flatten(0, 1)
            if self.pools[i - 1]:
                x = getattr(self, f"proj{i}_mp")(x)
                H, W = (H + 1) // 2, (W + 1) // 2
            x = getattr(self, f"proj{i}_conv")(x)
            x = getattr(self, f"proj{i}_bn")(x).reshape(T, B, -1, H, W)
        return x


class Spikingformer(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10, embed_dims: int = 384,
                 num_heads: int = 12, mlp_ratio: float = 4.0, depths: int = 4,
                 pools: tuple[bool, ...] = (False, False, True, True)) -> None:
        super().__init__()
        self.patch_embed = SpikingTokenizer(in_channels, embed_dims, pools)
        self.block = nn.ModuleList([Block(embed_dims, num_heads, mlp_ratio) for _ in range(depths)])
        self.head = nn.Linear(embed_dims, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)  # T, B, C, H, W
        x = x.flatten(3)  # T, B, C, N
        for blk in self.block:
            x = blk(x)
        return x.mean(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        return self.head(x.mean(0))


def spikingformer_cifar_4_384() -> Spikingformer:
    return Spikingformer(3, 10, 384, 12, 4.0, 4, (False, False, True, True))


def spikingformer_imagenet(depth: int = 8, dim: int = 384) -> Spikingformer:
    return Spikingformer(3, 1000, dim, dim // 64, 4.0, depth, (True, True, True, True))


def spikingformer_imagenet_8_768() -> Spikingformer:
    """The paper's largest ImageNet model (66.3 M parameters), for ``--arch``."""
    return spikingformer_imagenet(8, 768)


def spikingformer_digits() -> Spikingformer:
    """A small Spikingformer for 8x8 digits: 2x2 = 4 tokens, one block, D = 32."""
    return Spikingformer(1, 10, 32, 2, 4.0, 1, (False, False, True, True))
