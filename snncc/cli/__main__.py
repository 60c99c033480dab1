"""`python -m snncc.cli` is the `snncc` command."""

from snncc.cli import main

main()
