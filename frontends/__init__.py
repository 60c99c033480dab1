"""Frontends: a model or graph file -> snncc's IR.

``registry`` holds one table of file kinds (``snnir``, ``torch``, ``nir``, ``onnx``; each a single
``register_frontend`` call) and :func:`~snncc.frontends.registry.load_path`, the one
way from a path to a graph that ``snncc.load`` and the CLI share. ``torch`` is
the PyTorch tracer (``snncc.trace``); ``nir`` reads NIR files (snnTorch, Norse, ...),
``onnx`` ONNX models.
"""
