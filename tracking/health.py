"""Fail fast on an unreachable tracking server, before any trial starts.

MLflow's HTTP client retries with back-off for minutes; a user who mistyped a port
should learn it in seconds.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request

from tracking.recorder import TrackingError
from tracking.secrets import mask


def check_reachable(tracking_uri: str, timeout: float = 5.0) -> None:
    """Raise TrackingError unless an http(s) tracking server answers its /health."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    parts = urllib.parse.urlsplit(tracking_uri)
    # user:password@ in the URI is HTTP basic auth (as MLflow's client sends it)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    url = urllib.parse.urlunsplit(
        (parts.scheme, netloc, parts.path.rstrip("/") + "/health", "", "")
    )
    request = urllib.request.Request(url)
    if parts.username is not None:
        pair = (
            f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        )
        request.add_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
    shown = mask(tracking_uri)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            if response.status != 200:
                raise TrackingError(f"tracking.uri={shown}: {url} answered HTTP {response.status}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(
            f"tracking.uri={shown}: no MLflow server answers there ({mask(reason)}); "
            "start one (mlflow server) or use the embedded default sqlite:///mlflow.db"
        ) from exc
