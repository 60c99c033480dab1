"""Train dynamic time steps into the digits Spikingformer.

    python -m snncc.examples.train_dts --epochs 40 --lam 0.2 --init 0.1

Starts from the trained unmasked checkpoint, puts a `TimestepMask` after every
LIF layer (snncc.nn.insert_timestep_masks), and fine-tunes with the time-step
regularizer, which pushes masks towards fewer active steps. Saves the whole
model and records accuracy and average time steps in results.json.
"""

from __future__ import annotations

import time

import click
import torch
from spikingjelly.clock_driven.neuron import MultiStepLIFNode

from snncc.examples.digits import load_digits_split
from snncc.examples.train_digits import CKPT, T, accuracy, record, train
from snncc.loading import load_model
from snncc.nn import average_timesteps, insert_timestep_masks, mask_report, timestep_regularizer


@click.command()
@click.option("--epochs", default=40, show_default=True)
@click.option("--lam", default=0.2, show_default=True, help="weight of the time-step regularizer")
@click.option("--lr", default=1e-3, show_default=True)
@click.option("--init", default=0.1, show_default=True, help="initial score of every step")
def main(epochs: int, lam: float, lr: float, init: float) -> None:
    torch.set_num_threads(2)
    t0 = time.time()
    base = load_model(CKPT / "spikingformer_digits.pt").module
    _, _, xte, yte = load_digits_split()
    base_acc = accuracy(base, xte, yte)
    model = insert_timestep_masks(base, T, (MultiStepLIFNode,), init=init)
    model = train(model, epochs, lr=lr, extra_loss=lambda m: lam * timestep_regularizer(m))
    acc = accuracy(model, xte, yte)
    avg = average_timesteps(model)
    torch.save(model, CKPT / "spikingformer_digits_dts.pt")
    record("spikingformer_digits_dts", {"test_accuracy": acc, "average_timesteps": avg,
                                        "T": T, "epochs": epochs, "lambda": lam,
                                        "unmasked_test_accuracy": base_acc})
    print(f"DTS: test accuracy {acc:.4f} (unmasked {base_acc:.4f}), average time steps "
          f"{avg:.2f} of {T} ({time.time() - t0:.0f} s)")
    for k, v in mask_report(model).items():
        print(f"  {k}: {v}")


if __name__ == "__main__":
    main()
