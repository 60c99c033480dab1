"""Renderings of `snncc report` data that go beyond the terminal (see :mod:`.html`)."""
