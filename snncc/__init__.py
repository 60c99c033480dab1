"""snncc: a compiler from trained spiking neural networks to neuromorphic hardware."""

__version__ = "0.1.0"
