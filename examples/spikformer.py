"""Spikformer (Zhou et al., ICLR 2023), written as its public CIFAR code is.

Structure (FACTS.md section 4): SPS patch splitting (four conv3x3 -> BN -> LIF
stages of widths D/8, D/4, D/2, D with max-pooling, plus a relative position
embedding `x = LIF(BN(conv(x))) + x`), blocks of spiking self-attention
(q, k, v = LIF(BN(Linear(x))), `attn = q @ k^T * 0.125`, `attn_lif` with
threshold 0.5) and a spiking MLP, with residuals `x = x + attn(x)`,
`x = x + mlp(x)`. The residual stream carries integers, so q, k, v and fc1
of every block multiply integers by weights: the spike-only check's classic
violation. The unused LayerNorms of the original are kept so the parameter
count matches the paper's module.

Difference from the original: `forward` takes the input already repeated over
time, [T, B, C, H, W]; the caller encodes (see `digits.encode`).
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
        self.fc1_linear = nn.Linear(in_features, hidden_features)
        self.fc1_bn = nn.BatchNorm1d(hidden_features)
        self.fc1_lif = lif()
        self.fc2_linear = nn.Linear(hidden_features, in_features)
        self.fc2_bn = nn.BatchNorm1d(in_features)
        self.fc2_lif = lif()
        self.c_hidden = hidden_features
        self.c_output = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, N, C = x.shape
        x_ = x.flatten(0, 1)
        x = self.fc1_linear(x_)
        x = self.fc1_bn(x.transpose(-1, -2)).transpose(-1, -2).reshape(T, B, N, self.c_hidden).contiguous()
        x = self.fc1_lif(x)
        x = self.fc2_linear(x.flatten(0, 1))
        x = self.fc2_bn(x.transpose(-1, -2)).transpose(-1, -2).reshape(T, B, N, C).contiguous()
        x = self.fc2_lif(x)
        return x


class SSA(nn.Module):
    """Spiking self-attention: no softmax; q, k, v are spikes."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        assert dim % num_heads == 0
        self.dim = dim
        self.num_heads = num_heads
        self.scale = 0.125
        for name in ("q", "k", "v"):
            setattr(self, f"{name}_linear", nn.Linear(dim, dim))
            setattr(self, f"{name}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{name}_lif", lif())
        self.attn_lif = lif(v_threshold=0.5)
        self.proj_linear = nn.Linear(dim, dim)
        self.proj_bn = nn.BatchNorm1d(dim)
        self.proj_lif = lif()

    def _qkv(self, x_for_qkv: torch.Tensor, name: str, T: int, B: int, N: int, C: int) -> torch.Tensor:
        linear, bn, sn = (getattr(self, f"{name}_{p}") for p in ("linear", "bn", "lif"))
        out = linear(x_for_qkv)
        out = bn(out.transpose(-1, -2)).transpose(-1, -2).reshape(T, B, N, C).contiguous()
        out = sn(out)
        return out.reshape(T, B, N, self.num_heads, C // self.num_heads).permute(0, 1, 3, 2, 4).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, N, C = x.shape
        x_for_qkv = x.flatten(0, 1)
        q = self._qkv(x_for_qkv, "q", T, B, N, C)
        k = self._qkv(x_for_qkv, "k", T, B, N, C)
        v = self._qkv(x_for_qkv, "v", T, B, N, C)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        x = attn @ v
        x = x.transpose(2, 3).reshape(T, B, N, C).contiguous()
        x = self.attn_lif(x)
        x = x.flatten(0, 1)
        x = self.proj_lif(self.proj_bn(self.proj_linear(x).transpose(-1, -2)).transpose(-1, -2)
                          .reshape(T, B, N, C))
        return x


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)  # unused in forward, as in the original
        self.attn = SSA(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)  # unused in forward, as in the original
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        x = x + self.mlp(x)
        return x


class SPS(nn.Module):
    """Spiking patch splitting; `pools[i]` puts a MaxPool(3, 2, 1) after stage i."""

    def __init__(self, in_channels: int, embed_dims: int, pools: tuple[bool, ...]) -> None:
        super().__init__()
        widths = [in_channels, embed_dims // 8, embed_dims // 4, embed_dims // 2, embed_dims]
        suffix = ["", "1", "2", "3"]
        for i in range(4):
            setattr(self, f"proj_conv{suffix[i]}",
                    nn.Conv2d(widths[i], widths[i + 1], 3, 1, 1, bias=False))
            setattr(self, f"proj_bn{suffix[i]}", nn.BatchNorm2d(widths[i + 1]))
            setattr(self, f"proj_lif{suffix[i]}", lif())
            if pools[i]:
                setattr(self, f"maxpool{suffix[i]}", nn.MaxPool2d(3, 2, 1))
        self.pools = pools
        self.rpe_conv = nn.Conv2d(embed_dims, embed_dims, 3, 1, 1, bias=False)
        self.rpe_bn = nn.BatchNorm2d(embed_dims)
        self.rpe_lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = x.flatten(0, 1)
        for i, s in enumerate(["", "1", "2", "3"]):
            x = getattr(self, f"proj_conv{s}")(x)
            x = getattr(self, f"proj_bn{s}")(x).reshape(T, B, -1, H, W).contiguous()
            x = getattr(self, f"proj_lif{s}")(x).flatten(0, 1).contiguous()
            if self.pools[i]:
                x = getattr(self, f"maxpool{s}")(x)
                H, W = (H + 1) // 2, (W + 1) // 2
        x_feat = x.reshape(T, B, -1, H, W).contiguous()
        x = self.rpe_conv(x)
        x = self.rpe_bn(x).reshape(T, B, -1, H, W).contiguous()
        x = self.rpe_lif(x)
        x = x + x_feat
        x = x.flatten(-2).transpose(-1, -2)  # T, B, N, D
        return x


class Spikformer(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10, embed_dims: int = 384,
                 num_heads: int = 12, mlp_ratio: float = 4.0, depths: int = 4,
                 pools: tuple[bool, ...] = (False, False, True, True)) -> None:
        super().__init__()
        self.patch_embed = SPS(in_channels, embed_dims, pools)
        self.block = nn.ModuleList([Block(embed_dims, num_heads, mlp_ratio) for _ in range(depths)])
        self.head = nn.Linear(embed_dims, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for blk in self.block:
            x = blk(x)
        return x.mean(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        return self.head(x.mean(0))


def spikformer_cifar_4_384() -> Spikformer:
    return Spikformer(3, 10, 384, 12, 4.0, 4, (False, False, True, True))


def spikformer_imagenet(depth: int = 8, dim: int = 384) -> Spikformer:
    return Spikformer(3, 1000, dim, dim // 64, 4.0, depth, (True, True, True, True))


def spikformer_digits() -> Spikformer:
    """A small Spikformer for 8x8 digits: 2x2 = 4 tokens, one block, D = 32."""
    return Spikformer(1, 10, 32, 2, 4.0, 1, (False, False, True, True))
