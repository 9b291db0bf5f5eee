"""A sweep's model in MLflow 3's terms: a LoggedModel on the parent run, a version of a
registered model, and the aliases that say which version to serve.

- The model is a LoggedModel (``client.create_logged_model`` ... ``finalize``) whose
  source run is the sweep's parent, so ``mlflow.search_logged_models`` finds it and the
  runs table shows it in its Models column; the version is registered from
  ``models:/<model_id>``.
- ``@latest-sweep`` always moves to the new version. ``@champion`` moves only when the
  new version beats the current champion on the same test set: each version carries its
  test score, the objective's mode and the test split's digest as tags, and a champion
  scored on another test set is not compared (the new version says why in a tag).
- A registered model's versions all take the same inputs: ``check_inputs`` refuses a
  sweep whose data would register a version with other inputs, before any work.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from dnn_sweep.errors import ConfigError
from tracking.health import sqlite_missing

CHAMPION, LATEST = "champion", "latest-sweep"
ROUND_TAG = "sweep.round"  # after which set of trials (1, then +1 per resume adding some)
INPUTS_TAG = "inputs.digest"  # digest of the input schema every version must share
LOGGED_MODEL_TAG = "logged_model_id"  # the version's LoggedModel
TEST_TAGS = ("test.metric", "test.mode", "test.value", "test.digest")


@dataclass(frozen=True)
class HeldOutScore:
    """A model's score on a test split: what ``@champion`` compares."""

    metric: str
    mode: str  # "max" or "min"
    value: float
    digest: str  # of the test split: scores on different splits are not compared

    def tags(self) -> dict[str, str]:
        return dict(
            zip(TEST_TAGS, (self.metric, self.mode, repr(self.value), self.digest), strict=True)
        )

    def beats(self, other: dict[str, str]) -> bool | None:
        """Whether this score beats a version's tagged one; None when not comparable."""
        if [other.get(k) for k in TEST_TAGS[:2] + TEST_TAGS[3:]] != [
            self.metric,
            self.mode,
            self.digest,
        ]:
            return None
        theirs = float(other["test.value"])
        return self.value > theirs if self.mode == "max" else self.value < theirs


@dataclass(frozen=True)
class Registered:
    """Where the sweep's model went."""

    uri: str  # models:/NAME/VERSION
    note: str  # one line on the champion decision


def log_logged_model(
    client: MlflowClient,
    run_id: str,
    name: str,
    save: Callable[[str, Any], None],
    tags: dict[str, str],
) -> Any:
    """A LoggedModel of ``run_id``'s experiment, sourced from that run and listed in its
    outputs; ``save(path, mlflow_model)`` writes the model folder with the MLmodel
    metadata given. Returns the ``LoggedModel``."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model

    run = client.get_run(run_id)
    logged = client.create_logged_model(
        run.info.experiment_id, name=name, source_run_id=run_id, tags=tags
    )
    metadata = Model(
        artifact_path=logged.artifact_location,
        model_uuid=logged.model_id,
        run_id=run_id,
        model_id=logged.model_id,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="dnn-sweep-model-") as tmp:
            path = str(Path(tmp) / "model")
            save(path, metadata)
            client.log_model_artifacts(logged.model_id, path)
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    return logged


def register(client: MlflowClient, name: str, logged: Any, tags: dict[str, str]) -> str:
    """A new version of registered model ``name`` (created on first use) from the
    LoggedModel ``logged``; returns the version. The source is the model's artifact
    location: MLflow's SQL registry resolves a ``models:/<model_id>`` source through the
    process-wide tracking URI, not this client's, and keeps no model id; the version's
    tag ``logged_model_id`` names its LoggedModel instead."""
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(
        name,
        logged.artifact_location,
        run_id=logged.source_run_id,
        tags={**tags, LOGGED_MODEL_TAG: logged.model_id},
        model_id=logged.model_id,
    )
    return str(version.version)


def version_of(client: MlflowClient, name: str, run_id: str, round_: int) -> Any | None:
    """The version of ``name`` that run ``run_id`` registered for round ``round_``."""
    try:
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:  # no such registered model yet
        return None
    mine = [v for v in versions if v.tags.get(ROUND_TAG, "1") == str(round_)]
    return mine[0] if mine else None


def promote(client: MlflowClient, name: str, version: str, score: HeldOutScore | None) -> str:
    """Move ``@latest-sweep`` to ``version``, and ``@champion`` when it beats the
    current one (or there is none); returns one line saying what happened to
    ``@champion`` (also tagged on the version as ``champion.decision``)."""
    client.set_registered_model_alias(name, LATEST, version)
    current = _alias(client, name, CHAMPION)
    beats = None if score is None or current is None else score.beats(current.tags)
    if current is None or beats:
        client.set_registered_model_alias(name, CHAMPION, version)
        was = "" if current is None else f" (was version {current.version})"
        line = f"@{CHAMPION} -> version {version}{was}"
    elif beats is None:
        line = (
            f"@{CHAMPION} stays on version {current.version}: it was scored on another "
            "test set (or metric), so the two cannot be compared"
        )
    else:
        line = (
            f"@{CHAMPION} stays on version {current.version}: its test "
            f"{current.tags['test.metric']} {float(current.tags['test.value']):.4f} is not "
            f"beaten by {score.value:.4f}"  # type: ignore[union-attr]
        )
    client.set_model_version_tag(name, version, "champion.decision", line)
    return line


def check_inputs(client: MlflowClient, name: str, digest: str, dataset: str = "data") -> None:
    """Refuse a model whose input schema differs from the registered model's versions.

    Raises:
        ConfigError: naming the registered model and how to choose another name.
    """
    latest = _alias(client, name, LATEST)
    theirs = None if latest is None else latest.tags.get(INPUTS_TAG)
    if theirs is not None and theirs != digest:
        raise ConfigError(
            f"tracking.registered_model={name}: its versions take other inputs than this "
            f"dataset (input schema {theirs} vs {digest}); register under another name, "
            f"e.g. tracking.registered_model={name}-{dataset}"
        )


def _alias(client: MlflowClient, name: str, alias: str) -> Any | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:  # no such model, or no such alias
        return None


def check_registered_inputs(tracking_uri: str, name: str, digest: str, dataset: str) -> None:
    """``check_inputs`` against the registry at ``tracking_uri`` (a SQLite file not made
    yet has nothing registered, and is not created here)."""
    if sqlite_missing(tracking_uri):
        return
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    check_inputs(client, name, digest, dataset)


@dataclass(frozen=True)
class Downloaded:
    """A registered model version's files, fetched to a local folder."""

    folder: str
    name: str
    version: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def parse_model_uri(uri: str, key: str) -> tuple[str, str, str]:
    """(name, version, alias) of ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` (one
    of version and alias is empty).

    Raises:
        ConfigError: a malformed URI (``key`` names the config key that gave it).
    """
    ref = uri.removeprefix("models:/")
    name, at, alias = ref.partition("@")
    name, _, number = name.partition("/") if not at else (name, "", "")
    if not name or (not at and not number.isdigit()) or (at and not alias):
        raise ConfigError(f"{key}={uri}: must be models:/NAME/VERSION or models:/NAME@ALIAS")
    return name, number, alias


def find_version(uri: str, tracking_uri: str, key: str = "transfer.source") -> Any | None:
    """The registered model version ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``
    names in the registry at ``tracking_uri``; None when there is none (yet).

    Raises:
        ConfigError: a malformed URI (``key`` names the config key that gave it).
    """
    name, number, alias = parse_model_uri(uri, key)
    if sqlite_missing(tracking_uri):
        return None
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if alias:
        return _alias(client, name, alias)
    try:
        return client.get_model_version(name, number)
    except MlflowException:  # no such model or version
        return None


def download_version(uri: str, tracking_uri: str, key: str = "transfer.source") -> Downloaded:
    """The files of the version ``uri`` names (see ``find_version``), in a new local
    folder.

    Raises:
        ConfigError: a malformed URI, or no such model, version or alias.
    """
    import mlflow

    version = find_version(uri, tracking_uri, key)
    if version is None:
        raise ConfigError(f"{key}={uri}: no such registered model version in {tracking_uri}")
    folder = tempfile.mkdtemp(prefix="dnn-sweep-source-")
    mlflow.artifacts.download_artifacts(
        artifact_uri=version.source, dst_path=folder, tracking_uri=tracking_uri
    )
    return Downloaded(folder, version.name, str(version.version))
