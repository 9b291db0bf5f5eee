"""Fail fast on an unreachable tracking server, before any trial starts.

MLflow's HTTP client retries with back-off for minutes; a user who mistyped a port
should learn it in seconds.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from tracking.recorder import TrackingError


def check_reachable(tracking_uri: str, timeout: float = 5.0) -> None:
    """Raise TrackingError unless an http(s) tracking server answers its /health."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            if response.status != 200:
                raise TrackingError(
                    f"tracking.uri={tracking_uri}: {url} answered HTTP {response.status}"
                )
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(
            f"tracking.uri={tracking_uri}: no MLflow server answers there ({reason}); "
            "start one (mlflow server) or use the embedded default sqlite:///mlflow.db"
        ) from exc
