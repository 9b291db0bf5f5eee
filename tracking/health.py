"""Fail fast on an unreachable tracking server, before any trial starts.

MLflow's HTTP client retries with back-off for minutes; a user who mistyped a port
should learn it in seconds.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from dnn_sweep.errors import TrackingError
from tracking.secrets import mask

# URI schemes MLflow's tracking client serves (SQLAlchemy databases with or without a
# "+driver", its REST API, a local folder, Databricks).
SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "file", "databricks")


def sqlite_missing(tracking_uri: str) -> bool:
    """Whether ``tracking_uri`` names a SQLite file that does not exist yet: a store
    that holds nothing, and that a read must not create."""
    prefix = "sqlite:///"
    return tracking_uri.startswith(prefix) and not Path(tracking_uri[len(prefix) :]).is_file()


def check_scheme(tracking_uri: str) -> None:
    """Raise TrackingError for a URI scheme MLflow cannot track to (a typo such as
    ``sqllite://`` would otherwise fail deep inside MLflow, after the sweep started)."""
    if "://" not in tracking_uri and not tracking_uri.startswith("databricks"):
        return  # a local folder
    scheme = tracking_uri.split(":", 1)[0].lower().split("+", 1)[0]
    if scheme not in SCHEMES:
        raise TrackingError(
            f"tracking.uri={mask(tracking_uri)}: unsupported scheme {scheme}; use "
            "sqlite:///FILE.db, http(s)://HOST:PORT (an mlflow server), postgresql://, "
            "mysql://, mssql://, file:///FOLDER or databricks"
        )


def check_reachable(tracking_uri: str, timeout: float = 5.0) -> None:
    """Raise TrackingError for an unsupported scheme, or unless an http(s) tracking
    server answers its /health."""
    check_scheme(tracking_uri)
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
