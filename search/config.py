"""Hydra composition for the CLI and the Python API: the packaged configs plus the
user's own folders, and the one-line check of a command line before anything runs.

Config groups resolve through Hydra's own search path (the packaged ``conf/``, then
``-cd``/``--config-dir`` and ``hydra.searchpath``), so a user's search spaces, datasets and
presets are used exactly like the shipped ones, and an unknown option is reported with
the options that search path holds.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dnn_sweep.errors import ConfigError, reason
from search.schema import register

# Hydra composes from the schema's defaults: registered once, before any composition
# (the CLI's @hydra.main, compose() for the Python API and the checks).
register()

# A multirun expands into at most this many checked compositions.
MAX_CHECKED_JOBS = 256


def conf_dir() -> str:
    """Where the configs are: inside the installed package (search/conf, see
    pyproject.toml), or the checkout's top-level conf/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise RuntimeError(f"dnn-sweep configs not found next to {here}")


def _searchpath(overrides: list[str], config_dir: str | None) -> tuple[list[str], list[str]]:
    """(overrides without ``hydra.searchpath``, the user's folders as search-path entries:
    ``config_dir`` first, then the command line's own entries)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    paths, rest = [], []
    if config_dir is not None:
        folder = Path(config_dir).expanduser().resolve()
        if not folder.is_dir():
            raise ConfigError(f"--config-dir={config_dir}: no such folder")
        paths.append(f"file://{folder}")
    for line in overrides:
        if line.split("=", 1)[0].lstrip("+~") != "hydra.searchpath":
            rest.append(line)
            continue
        value = OverridesParser.create().parse_override(line).value()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{line}: hydra.searchpath must be a list, e.g. [file://DIR]")
        paths += [_absolute(v) for v in value]
        for v in value:  # Hydra would only warn, then report the options as unknown
            if not v.startswith("pkg://") and not Path(_absolute(v)[len("file://") :]).is_dir():
                raise ConfigError(f"hydra.searchpath: no such folder {v}")
    return rest, paths


def searchpath_line(paths: list[str] | tuple[str, ...]) -> list[str]:
    """The ``hydra.searchpath`` override that adds ``paths`` (none for no paths)."""
    return [f"hydra.searchpath=[{','.join(paths)}]"] if paths else []


def user_searchpath(overrides: list[str], config_dir: str | None) -> tuple[str, ...]:
    """The user's config folders (``config_dir``, ``hydra.searchpath``) as search-path
    entries: what a sweep that starts another (``transfer.pretrain``) composes with."""
    return tuple(_searchpath(overrides, config_dir)[1])


def hydra_user_searchpath() -> tuple[str, ...]:
    """The running Hydra app's user config folders (``-cd``, ``hydra.searchpath``)."""
    from hydra.core.hydra_config import HydraConfig

    ours = ("hydra", "main", "schema")  # Hydra's own, the packaged conf/, the schema
    sources = HydraConfig.get().runtime.config_sources
    return tuple(f"{s.schema}://{s.path}" for s in sources if s.provider not in ours)


def _absolute(entry: str) -> str:
    """``file://relative`` -> ``file:///abs/relative`` (Hydra resolves it from its own
    working directory otherwise); a bare folder becomes ``file://``."""
    if entry.startswith("pkg://"):
        return entry
    path = entry.removeprefix("file://")
    return f"file://{Path(path).expanduser().resolve()}"


@contextmanager
def _hydra(config_dir: str | None = None) -> Iterator[None]:
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir or conf_dir(), version_base=None):
        yield


def _options(group: str, searchpath: list[str]) -> list[str]:
    from hydra.core.global_hydra import GlobalHydra

    loader = GlobalHydra.instance().config_loader()
    return loader.get_group_options(group, config_name="config", overrides=searchpath)


def _missing_option(exc: Exception, searchpath: list[str]) -> str | None:
    """ "group=option: unknown option; allowed are ..." (inside Hydra's context: the
    options come from its search path)."""
    from hydra.errors import MissingConfigException

    if not isinstance(exc, MissingConfigException) or not exc.missing_cfg_file:
        return None
    group, _, option = str(exc.missing_cfg_file).rpartition("/")
    if not group:
        return None
    allowed = ", ".join(_options(group, searchpath)) or "none"
    where = f" (search path adds {searchpath[0].split('=', 1)[1]})" if searchpath else ""
    return f"{group}={option}: unknown option; allowed are {allowed}{where}"


def _not_a_name(overrides: list[str], searchpath: list[str]) -> str | None:
    """ "search_space=false: not an option's name ..." for a config group given a value
    Hydra reads as a boolean, number or null (it raises a bare ValueError); inside
    Hydra's context."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    groups = set(GlobalHydra.instance().config_loader().list_groups(""))
    for override in OverridesParser.create().parse_overrides(overrides):
        value = override.value()
        group = override.key_or_group
        if group in groups and not isinstance(value, str | list):
            allowed = ", ".join(_options(group, searchpath)) or "none"
            leave = f" (or ~{group} to leave it out)" if value is None else ""
            return (
                f"{override.input_line}: not an option's name (read as "
                f"{type(value).__name__}); allowed are {allowed}{leave}"
            )
    return None


def _close_keys(key: str, overrides: list[str], searchpath: list[str]) -> str:
    """ "; did you mean trials?" from the keys the config has without the bad override."""
    parent, _, leaf = key.rpartition(".")
    others = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key]
    try:
        base = compose(others, searchpath)
    except ConfigError:
        return ""
    node = OmegaConf.select(base, parent) if parent else base
    names = [str(n) for n in node] if isinstance(node, DictConfig) else []
    close = difflib.get_close_matches(leaf, names, n=1)
    where = f"{parent}." if parent else ""
    return f"; did you mean {where}{close[0]}?" if close else " (see `sweep --cfg job`)"


def _shown(path: str) -> str:
    """A config file's path as the user wrote it: relative to here when it is below."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def _config_folders(searchpath: list[str]) -> list[Path]:
    """The packaged conf/ and the user's ``file://`` folders of ``hydra.searchpath``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    folders = [Path(conf_dir())]
    for line in searchpath:
        entries = OverridesParser.create().parse_override(line).value()
        folders += [Path(e.removeprefix("file://")) for e in entries if e.startswith("file://")]
    return folders


def _undecodable(searchpath: list[str]) -> str:
    """The first config file that is not UTF-8 (Python's decode error names none)."""
    for folder in _config_folders(searchpath):
        for file in sorted(folder.rglob("*.yaml")):
            try:
                file.read_bytes().decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"{_shown(str(file))}: not UTF-8 text ({reason(exc)})"
    return "a config file is not UTF-8 text"


def yaml_error(exc: Exception, searchpath: list[str]) -> str | None:
    """ "FILE:LINE:COLUMN: the parser's message" for a config file that is not valid
    YAML (Hydra lets PyYAML's error through, ~90 lines of traceback); None otherwise."""
    import yaml

    if isinstance(exc, UnicodeDecodeError):
        return _undecodable(searchpath)
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark, context = exc.problem_mark, exc.context_mark
        where = f"{_shown(mark.name)}:{mark.line + 1}:{mark.column + 1}"
        if exc.context and context:  # "while parsing a flow sequence" and where it began
            where += f": {exc.problem} ({exc.context} at {context.line + 1}:{context.column + 1})"
            return where
        return f"{where}: {exc.problem}"
    if isinstance(exc, yaml.YAMLError):
        name = getattr(exc, "name", None)
        return f"{_shown(name) + ': ' if name else ''}not valid YAML ({reason(exc)})"
    return None


def compose(overrides: list[str], searchpath: list[str] | None = None) -> DictConfig:
    """The config ``sweep`` would run with these overrides.

    Raises:
        ConfigError: one line naming the unknown option or key, or the config file
            (line and column) that is not valid YAML.
    """
    import yaml
    from hydra import compose as hydra_compose
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    searchpath = searchpath or []
    with _hydra():
        try:
            return hydra_compose("config", overrides=[*overrides, *searchpath])
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            error, missing = exc, yaml_error(exc, searchpath)
        except (HydraException, OmegaConfBaseException) as exc:
            error, missing = exc, _missing_option(exc, searchpath)
        except ValueError as exc:  # Hydra's own, for an override it cannot apply
            error, missing = exc, _not_a_name(overrides, searchpath)
    if missing:
        raise ConfigError(missing)
    text = str(error)
    if text.startswith("Could not override '"):
        key = text.split("'")[1]
        raise ConfigError(f"{key}: unknown config key{_close_keys(key, overrides, searchpath)}")
    first = " ".join(line.strip() for line in text.splitlines()[:2] if line.strip())
    raise ConfigError(first or type(error).__name__)


def compose_user(overrides: list[str] | None = None, config_dir: str | None = None) -> DictConfig:
    """The Python API's composition: overrides plus a folder of the user's configs."""
    rest, paths = _searchpath(list(overrides or []), config_dir)
    return compose(rest, searchpath_line(paths))


def _jobs(overrides: list[str]) -> Iterator[list[str]]:
    """Each job of a multirun: the cartesian product of the sweep overrides' values."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = []
    for o in parsed:
        if o.is_sweep_override():
            key = o.get_key_element()
            choices.append([f"{key}={v}" for v in o.sweep_string_iterator()])
        else:
            choices.append([o.input_line])
    return (list(job) for job in itertools.product(*choices))


def command_line(argv: list[str]) -> argparse.Namespace:
    """The parts of Hydra's command line this checks: the config folder options, the
    multirun flag and the overrides (other Hydra flags pass through untouched)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-cd", "--config-dir")
    parser.add_argument("-cp", "--config-path")
    parser.add_argument("-cn", "--config-name")
    parser.add_argument("-m", "--multirun", action="store_true")
    for flag in ("-h", "--help", "--hydra-help", "--version", "-sc", "--shell-completion"):
        parser.add_argument(flag, action="store_true")
    for flag in ("-c", "--cfg", "-p", "--package", "-i", "--info"):
        parser.add_argument(flag, nargs="?")
    parser.add_argument("overrides", nargs="*")
    args, _ = parser.parse_known_args(argv)
    return args


def check_command_line(argv: list[str]) -> None:
    """Compose every job ``argv`` asks for, as Hydra will, so that a bad option or key
    fails in one line before anything starts.

    Raises:
        ConfigError: naming the offending option or key and what is allowed.
    """
    args = command_line(argv)
    if args.help or args.hydra_help or args.version or args.config_path or args.config_name:
        return  # Hydra answers these itself (a custom primary config is the user's)
    rest, paths = _searchpath(args.overrides, args.config_dir)
    jobs = _jobs(rest) if args.multirun else iter([rest])
    for job in itertools.islice(jobs, MAX_CHECKED_JOBS):
        compose(job, searchpath_line(paths))


def compose_command_line(argv: list[str]) -> DictConfig:
    """The config a (single-run) ``sweep ARGV`` runs with."""
    args = command_line(argv)
    rest, paths = _searchpath(args.overrides, args.config_dir)
    return compose(rest, searchpath_line(paths))


def to_plain(cfg: DictConfig) -> dict[str, Any]:
    """The composed config as plain, resolved data (what Settings validates)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        raw = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "config"
        raise ConfigError(f"{key}: {str(exc).splitlines()[0]}") from None
    assert isinstance(raw, dict)
    return raw
