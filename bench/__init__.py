"""Head-to-head benchmark: dnn-sweep vs Keras Tuner (Random, Hyperband, Bayesian) and a
plain in-process Optuna loop, on the same data, space, epoch cap and wall-clock budget.
Run ``python -m bench --help``; bench/README.md explains the figures."""
