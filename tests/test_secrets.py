"""Credentials never reach MLflow records or log lines: the masking rules."""

from __future__ import annotations

import logging

import pytest

from tracking.secrets import MaskingFilter, mask, mask_mapping, secret_values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://alice:pw1234@127.0.0.1:5000", "http://alice:***@127.0.0.1:5000"),
        ("https://u:p%40ss@host/x?y=1", "https://u:***@host/x?y=1"),
        ("postgresql://db:hunter22@db:5432/mlflow", "postgresql://db:***@db:5432/mlflow"),
        ("https://h/api?token=abc123&x=1", "https://h/api?token=***&x=1"),
        ("s3://b/k?X-Amz-Signature=deadbeef", "s3://b/k?X-Amz-Signature=***"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("https://ghp_tok3n@mlflow.example.com", "https://***@mlflow.example.com"),
        ("see wss://tok3n@h/x and http://a:b1234@c", "see wss://***@h/x and http://a:***@c"),
        ("postgresql://sweep@db:5432/optuna", "postgresql://sweep@db:5432/optuna"),
        (r"#0 : tracking.uri=http\://u\:pw1234@h\:9", r"#0 : tracking.uri=http\://u\:***@h\:9"),
    ],
)
def test_uri_credentials_are_masked(text, expected):
    assert mask(text, environ={}) == expected


def test_secret_environment_values_are_masked_anywhere():
    env = {
        "MLFLOW_TRACKING_PASSWORD": "s3cret-value",
        "AWS_SECRET_ACCESS_KEY": "AKIAxyzSECRET",
        "HF_TOKEN": "hf_abcdef",
        "AUTHOR": "not-a-secret",
        "TOKENIZER": "bert-base",
        "PIN": "12",  # too short to mask in free text
    }
    assert set(secret_values(env)) == {"s3cret-value", "AKIAxyzSECRET", "hf_abcdef"}
    text = "logged s3cret-value and hf_abcdef by not-a-secret with bert-base, pin 12"
    assert mask(text, environ=env) == "logged *** and *** by not-a-secret with bert-base, pin 12"


def test_mapping_masks_values_and_secret_named_keys(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    masked = mask_mapping(
        {"tracking.uri": "http://a:b12345@h", "api_key": "k", "tokenizer": "bpe", "n": 3}
    )
    assert masked == {
        "tracking.uri": "http://a:***@h",
        "api_key": "***",
        "tokenizer": "bpe",
        "n": "3",
    }


def test_log_filter_masks_records(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-987654")
    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "connect %s with %s",
        ("http://u:pw99@h", "tok-987654"),
        None,
    )
    assert MaskingFilter().filter(record)
    assert record.getMessage() == "connect http://u:***@h with ***"


def test_a_multirun_keeps_no_password_in_its_files_or_terminal(tmp_path):
    """Hydra saves a multirun's overrides in multirun.yaml and logs each job's (escaped:
    `http\\://u\\:pw@`): both masked, whatever the jobs then do."""
    from tests.helpers import run_cli

    uri = "tracking.uri=http://u:pw1234@127.0.0.1:9"
    proc = run_cli("sweep", tmp_path, "-m", "trials=0,-1", uri, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (saved,) = tmp_path.glob("multirun/*/*/multirun.yaml")
    assert "pw1234" not in saved.read_text() and "u:***@" in saved.read_text()
    assert "pw1234" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert proc.stdout.count("u\\:***@") == 2, proc.stdout


def test_a_setting_named_like_a_secret_is_not_masked():
    """RAY_AUTH_MODE=token named "auth" but holds a mode: masking its value hid every
    "token" in the sweep's own messages (seen: "copy the head's ~/.ray/auth_***")."""
    env = {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": "/home/me/.ray/auth_token",
        "RAY_AUTH_TOKEN": "s3cr3t-t0ken",
        "MLFLOW_TRACKING_PASSWORD": "hunter22",
    }
    said = "copy ~/.ray/auth_token, or export RAY_AUTH_TOKEN=s3cr3t-t0ken (pw hunter22)"
    assert (
        mask(said, environ=env) == "copy ~/.ray/auth_token, or export RAY_AUTH_TOKEN=*** (pw ***)"
    )
