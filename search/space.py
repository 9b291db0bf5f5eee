"""Search spaces: YAML -> validated distribution objects -> Optuna define-by-run.

A space is parsed once, at the boundary, into frozen value objects whose constructors
validate themselves (the Optuna ``distributions`` style); everything downstream trusts
them. Conditional params (``when``) and per-layer params (``per_layer``) become an
Optuna define-by-run function, the form Ray Tune's ``OptunaSearch`` needs for
conditional spaces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna

from search.errors import ConfigError
from trainables.params import PARAMS, ParamRule

Scalar = bool | int | float | str | None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass(frozen=True)
class Distribution:
    """Base of the three distribution kinds; ``key`` is the config path for errors."""

    key: str

    def suggest(self, trial: optuna.Trial, name: str) -> Scalar:
        raise NotImplementedError

    def values_to_check(self) -> list[Scalar]:
        """Values whose validity bounds the whole distribution (for the param rules)."""
        raise NotImplementedError


@dataclass(frozen=True)
class IntDistribution(Distribution):
    low: int = 0
    high: int = 0
    step: int = 1
    log: bool = False

    def __post_init__(self) -> None:
        for bound in ("low", "high", "step"):
            v = getattr(self, bound)
            if not _is_number(v) or int(v) != v:
                raise ConfigError(f"{self.key}.{bound}={v!r}: an int param needs integer bounds")
        if self.low > self.high:
            raise ConfigError(f"{self.key}: low={self.low} > high={self.high}; need low <= high")
        if self.step < 1:
            raise ConfigError(f"{self.key}.step={self.step}: must be >= 1")
        if self.log and self.low < 1:
            raise ConfigError(f"{self.key}: log=true needs low >= 1 (got low={self.low})")
        if self.log and self.step != 1:
            raise ConfigError(f"{self.key}: log=true and step={self.step}; use step=1 with log")

    def suggest(self, trial: optuna.Trial, name: str) -> int:
        return trial.suggest_int(name, int(self.low), int(self.high), step=int(self.step),
                                 log=self.log)  # fmt: skip

    def values_to_check(self) -> list[Scalar]:
        return [int(self.low), int(self.high)]


@dataclass(frozen=True)
class FloatDistribution(Distribution):
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None

    def __post_init__(self) -> None:
        for bound in ("low", "high"):
            if not _is_number(getattr(self, bound)):
                raise ConfigError(
                    f"{self.key}.{bound}={getattr(self, bound)!r}: must be a number"
                )
        if self.low > self.high:
            raise ConfigError(f"{self.key}: low={self.low} > high={self.high}; need low <= high")
        if self.log and self.low <= 0:
            raise ConfigError(f"{self.key}: log=true needs low > 0 (got low={self.low})")
        if self.step is not None:
            if not _is_number(self.step) or self.step <= 0:
                raise ConfigError(f"{self.key}.step={self.step!r}: must be a number > 0")
            if self.log:
                raise ConfigError(f"{self.key}: log=true cannot be combined with step")

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.log,
                                   step=self.step)  # fmt: skip

    def values_to_check(self) -> list[Scalar]:
        return [float(self.low), float(self.high)]


@dataclass(frozen=True)
class CategoricalDistribution(Distribution):
    choices: tuple[Scalar, ...] = ()

    def __post_init__(self) -> None:
        if not self.choices:
            raise ConfigError(f"{self.key}.choices: must list at least one value")
        for c in self.choices:
            if not (c is None or isinstance(c, bool | int | float | str)):
                raise ConfigError(
                    f"{self.key}.choices: {c!r} is not a scalar (bool, int, float, str)"
                )
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise ConfigError(f"{self.key}.choices: {list(self.choices)} has duplicates")

    def suggest(self, trial: optuna.Trial, name: str) -> Scalar:
        return trial.suggest_categorical(name, list(self.choices))

    def values_to_check(self) -> list[Scalar]:
        return list(self.choices)


@dataclass(frozen=True)
class Constant(Distribution):
    """A fixed value: the param is set for every trial, never sampled."""

    value: Scalar = None

    def values_to_check(self) -> list[Scalar]:
        return [self.value]


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its distribution, when it applies, and whether it is per layer."""

    name: str
    distribution: Distribution
    when: Mapping[str, tuple[Scalar, ...]] = field(default_factory=dict)
    per_layer: str | None = None

    def applies(self, sampled: Mapping[str, Scalar]) -> bool:
        """Whether every condition holds for the values sampled so far."""
        return all(name in sampled and sampled[name] in values
                   for name, values in self.when.items())  # fmt: skip


_DIST_KEYS = {
    "int": ({"low", "high"}, {"step", "log"}),
    "float": ({"low", "high"}, {"log", "step"}),
    "categorical": ({"choices"}, set()),
}
_MODIFIERS = {"type", "when", "per_layer"}


def _parse_distribution(key: str, spec: Any) -> Distribution:
    if not isinstance(spec, Mapping):
        if isinstance(spec, list | tuple):
            raise ConfigError(
                f"{key}: a list is not a value; use {{type: categorical, choices: [...]}}"
            )
        return Constant(key, value=spec)
    kind = spec.get("type")
    if kind not in _DIST_KEYS:
        raise ConfigError(f"{key}.type={kind!r}: allowed are int, float, categorical")
    required, optional = _DIST_KEYS[kind]
    missing = required - set(spec)
    if missing:
        raise ConfigError(f"{key}: type {kind} needs {', '.join(sorted(missing))}")
    unknown = set(spec) - required - optional - _MODIFIERS
    if unknown:
        allowed = ", ".join(sorted(required | optional | _MODIFIERS))
        raise ConfigError(f"{key}.{sorted(unknown)[0]}: unknown key; allowed are {allowed}")
    args = {k: spec[k] for k in required | optional if k in spec}
    if "log" in args and not isinstance(args["log"], bool):
        raise ConfigError(f"{key}.log={args['log']!r}: must be true or false")
    if kind == "int":
        return IntDistribution(key, **args)
    if kind == "float":
        return FloatDistribution(key, **args)
    return CategoricalDistribution(key, choices=tuple(args["choices"]))


@dataclass(frozen=True)
class SearchSpace:
    """An ordered set of params; order is the define-by-run sampling order."""

    name: str
    params: tuple[Param, ...]

    @classmethod
    def from_config(cls, config: Mapping[str, Any], key: str = "search_space") -> SearchSpace:
        """Parse and validate the ``search_space`` config group.

        Raises:
            ConfigError: naming the offending key, for any invalid entry.
        """
        if not isinstance(config, Mapping):
            raise ConfigError(f"{key}: must be a mapping with name and params")
        unknown = set(config) - {"name", "params", "description"}
        if unknown:
            raise ConfigError(
                f"{key}.{sorted(unknown)[0]}: unknown key; allowed are name, params, description"
            )
        raw = config.get("params")
        if not isinstance(raw, Mapping) or not raw:
            raise ConfigError(f"{key}.params: must map at least one param name to a spec")
        params: list[Param] = []
        seen: dict[str, Param] = {}
        for name, spec in raw.items():
            pkey = f"{key}.params.{name}"
            rule = PARAMS.get(str(name))
            if rule is None:
                raise ConfigError(
                    f"{pkey}: unknown hyperparameter; allowed are {', '.join(PARAMS)}"
                )
            param = Param(
                str(name),
                _parse_distribution(pkey, spec),
                when=_parse_when(pkey, spec, seen),
                per_layer=_parse_per_layer(pkey, spec, seen, rule),
            )
            for value in param.distribution.values_to_check():
                if not rule.accepts(value):
                    raise ConfigError(f"{pkey}: {value!r} is not allowed; {name} must be "
                                      f"{rule.allowed()}")  # fmt: skip
            params.append(param)
            seen[param.name] = param
        return cls(str(config.get("name", "custom")), tuple(params))

    def define_by_run(self, trial: optuna.Trial) -> dict[str, Scalar]:
        """Sample one configuration; returns the constants (Ray merges them in).

        Conditional params are suggested only when their conditions hold, so they are
        absent (not defaulted) from trials where they do not apply.
        """
        sampled: dict[str, Scalar] = {}
        constants: dict[str, Scalar] = {}
        for p in self.params:
            if not p.applies(sampled):
                continue
            names = (
                [f"{p.name}_{i}" for i in range(int(sampled[p.per_layer]))]  # type: ignore[arg-type]
                if p.per_layer
                else [p.name]
            )
            for n in names:
                if isinstance(p.distribution, Constant):
                    value = p.distribution.value
                    constants[n] = value
                else:
                    value = p.distribution.suggest(trial, n)
                sampled[n] = value
        return constants

    def sample(self, trial: optuna.Trial) -> dict[str, Scalar]:
        """The full configuration of one trial (sampled and constant values)."""
        constants = self.define_by_run(trial)
        return {**trial.params, **constants}

    def names(self) -> list[str]:
        return [p.name for p in self.params]


def _parse_when(key: str, spec: Any, seen: Mapping[str, Param]) -> dict[str, tuple[Scalar, ...]]:
    if not isinstance(spec, Mapping) or spec.get("when") is None:
        return {}
    when = spec["when"]
    if not isinstance(when, Mapping) or not when:
        raise ConfigError(f"{key}.when: must map earlier param names to a value or list")
    out: dict[str, tuple[Scalar, ...]] = {}
    for other, values in when.items():
        if other not in seen:
            raise ConfigError(
                f"{key}.when.{other}: unknown hyperparameter; a condition may name only "
                f"params declared before it ({', '.join(seen) or 'none'})"
            )
        if seen[other].per_layer:
            raise ConfigError(f"{key}.when.{other}: cannot condition on a per-layer param")
        out[str(other)] = tuple(values) if isinstance(values, list | tuple) else (values,)
    return out


def _parse_per_layer(
    key: str, spec: Any, seen: Mapping[str, Param], rule: ParamRule
) -> str | None:
    if not isinstance(spec, Mapping) or spec.get("per_layer") is None:
        return None
    count = spec["per_layer"]
    if not rule.per_layer:
        raise ConfigError(f"{key}.per_layer: this param has one value for the whole model")
    if count not in seen or not isinstance(seen[count].distribution, IntDistribution | Constant):
        raise ConfigError(
            f"{key}.per_layer={count}: must name an int param declared before it "
            f"(e.g. n_hidden)"
        )
    return str(count)
