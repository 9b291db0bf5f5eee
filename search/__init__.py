"""Search side of dnn-sweep: search spaces, searchers, schedulers and the sweep driver.

Wires ``trainables`` (Keras) to Ray Tune and ``tracking`` (MLflow).
"""
