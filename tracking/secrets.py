"""Keep credentials out of what MLflow stores and what the sweep prints.

A tracking URI may carry a password (``https://user:pass@host``) or a token in its query
(``?token=...``), and the environment may hold ``MLFLOW_TRACKING_PASSWORD``, cloud keys
and the like. None of it may reach a run's params, tags or artifacts, or a log line:
MLflow records are shared with everyone who can open the UI. ``mask`` replaces each
secret with ``***``; the recorder applies it to every param, tag and text it writes, and
``install_log_filter`` to every log record of this process.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
# Environment variables whose values are secrets, by name.
# A name is secret when one of its _ . - separated parts says so: MLFLOW_TRACKING_PASSWORD,
# AWS_SECRET_ACCESS_KEY, HF_TOKEN, OPENAI_API_KEY; not "tokenizer" or "author".
_SECRET_NAME = re.compile(
    r"(?:^|[_.\-])(?:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|CREDENTIALS?|AUTH)"
    r"(?:$|[_.\-])",
    re.I,
)
# user:password@ in any URL (also as Hydra logs an override: `http\://u\:pw@h`)
_USERINFO = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*\\?://)(?P<user>[^:/@\s\\]+)(?P<sep>\\?:)(?P<pw>[^@/\s]+)@"
)
# a token alone as the userinfo of a web URL: https://TOKEN@host (GitHub, Databricks)
_TOKEN_USERINFO = re.compile(r"(?P<scheme>(?:https?|wss?)\\?://)(?P<token>[^:/@\s\\]+)@")
# ?token=...&password=... style query parameters
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&;][^=&\s]*(?:password|passwd|secret|token|api_?key|access_?key|signature|"
    r"sig|auth)[^=&\s]*)=(?P<value>[^&\s]+)",
    re.I,
)
# Values this short are not masked when found in free text (too many false hits).
_MIN_SECRET_LEN = 4
# Names that match _SECRET_NAME but hold a setting or a place, never a secret:
# RAY_AUTH_MODE=token (masking it hid every "token" in our own messages),
# RAY_AUTH_TOKEN_PATH, MLFLOW_AUTH_CONFIG_PATH.
_SETTING_NAME = re.compile(r"[_.\-](?:MODE|PATH|FILE|DIR|TYPE|ENABLED)$", re.I)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of environment variables that hold secrets, longest first."""
    env = os.environ if environ is None else environ
    values = {
        v
        for k, v in env.items()
        if _SECRET_NAME.search(k) and not _SETTING_NAME.search(k) and len(v) >= _MIN_SECRET_LEN
    }
    return sorted(values, key=len, reverse=True)


def mask(text: Any, extra: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> str:
    """``text`` as a string with URL passwords, secret query parameters, the values of
    secret environment variables and ``extra`` strings replaced by ``***``."""
    out = str(text)
    out = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}{m['sep']}{MASK}@", out)
    out = _TOKEN_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", out)
    out = _QUERY_SECRET.sub(lambda m: f"{m['key']}={MASK}", out)
    for value in [*extra, *secret_values(environ)]:
        if value and len(value) >= _MIN_SECRET_LEN:
            out = out.replace(value, MASK)
    return out


def mask_tree(data: Any) -> Any:
    """A config-like tree (mappings, lists) with every string in it masked."""
    if isinstance(data, Mapping):
        return {k: mask_tree(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [mask_tree(v) for v in data]
    return mask(data) if isinstance(data, str) else data


def mask_mapping(values: Mapping[str, Any]) -> dict[str, str]:
    """A params/tags mapping with every value masked (and any key naming a secret
    masked whole)."""
    return {
        k: (MASK if _SECRET_NAME.search(k) and v not in (None, "") else mask(v))
        for k, v in values.items()
    }


class MaskingFilter(logging.Filter):
    """Masks secrets in every record that passes through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class MaskingStream:
    """A text stream that masks secrets in everything written through it (libraries that
    print straight to ``sys.stdout``, e.g. MLflow's run links, included)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(mask(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # isatty, flush, fileno, encoding, ...
        return getattr(self._stream, name)


def install_log_filter() -> None:
    """Mask secrets in every log line and every write to stdout/stderr of this process:
    the masking filter goes on every handler of every logger that exists now (MLflow's
    and Ray's own handlers included), and the standard streams are wrapped."""
    import sys

    flt = MaskingFilter()
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, MaskingFilter) for f in handler.filters):
                handler.addFilter(flt)
    if not isinstance(sys.stdout, MaskingStream):
        sys.stdout = MaskingStream(sys.stdout)  # type: ignore[assignment]
    if not isinstance(sys.stderr, MaskingStream):
        sys.stderr = MaskingStream(sys.stderr)  # type: ignore[assignment]
