"""The Lava backend: real Lava processes, used as the bit-exact oracle for acsim.

Lava is imported lazily inside the functions, so importing snncc does not pay
for it.
"""

from snncc.backends.lava.chain import LavaChainResult, run_lava_chain

__all__ = ["LavaChainResult", "run_lava_chain"]
