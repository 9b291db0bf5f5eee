"""Keras side of dnn-sweep: data, model building and the training loop.

Knows nothing of Ray or MLflow: everything here takes plain dicts and numpy arrays,
and reports through a callback, so any orchestrator (or a test) can drive it.
Submodules are imported directly (``trainables.model``, ``trainables.data``...):
``trainables.params`` and ``trainables.registry`` names stay importable without
loading TensorFlow, so config validation is instant.
"""
