"""Train the small Spikformer / Spikingformer on digits (CPU, a few minutes).

    python -m snncc.examples.train_digits --model spikingformer --epochs 30

Saves the whole model with `torch.save(model)` (loadable by snncc without
trusting the file: its classes are under `snncc.`) and records the test
accuracy in `examples/checkpoints/results.json`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import torch
from spikingjelly.clock_driven import functional

from snncc.examples.digits import encode, load_digits_split
from snncc.examples.spikformer import spikformer_digits
from snncc.examples.spikingformer import spikingformer_digits

CKPT = Path(__file__).resolve().parent / "checkpoints"
FACTORIES = {"spikformer": spikformer_digits, "spikingformer": spikingformer_digits}
T = 4


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        functional.reset_net(model)
        correct += int((model(encode(x[i : i + batch], T)).argmax(1) == y[i : i + batch]).sum())
    functional.reset_net(model)
    return correct / len(x)


def train(model: torch.nn.Module, epochs: int, lr: float = 3e-3, seed: int = 0,
          extra_loss=None) -> torch.nn.Module:
    torch.manual_seed(seed)
    xtr, ytr, _, _ = load_digits_split()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            idx = perm[i : i + 64]
            functional.reset_net(model)
            loss = torch.nn.functional.cross_entropy(model(encode(xtr[idx], T)), ytr[idx])
            if extra_loss is not None:
                loss = loss + extra_loss(model)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    functional.reset_net(model)
    return model.eval()


def record(name: str, values: dict[str, float]) -> None:
    path = CKPT / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[name] = values
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


@click.command()
@click.option("--model", "name", type=click.Choice(sorted(FACTORIES)), default="spikingformer")
@click.option("--epochs", default=30, show_default=True)
def main(name: str, epochs: int) -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    t0 = time.time()
    model = train(FACTORIES[name](), epochs)
    _, _, xte, yte = load_digits_split()
    acc = accuracy(model, xte, yte)
    CKPT.mkdir(exist_ok=True)
    torch.save(model, CKPT / f"{name}_digits.pt")
    record(f"{name}_digits", {"test_accuracy": acc, "epochs": epochs, "T": T})
    print(f"{name}: test accuracy {acc:.4f} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
