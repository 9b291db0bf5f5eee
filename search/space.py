"""Search spaces: YAML -> validated distribution objects -> Optuna define-by-run.

A space is parsed once, at the boundary, into frozen value objects whose constructors
validate themselves (the Optuna ``distributions`` style); everything downstream trusts
them. Conditional params (``when``) and per-layer params (``per_layer``) become an
Optuna define-by-run function, the form Ray Tune's ``OptunaSearch`` needs for
conditional spaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from dnn_sweep.errors import ConfigError
from trainables.params import (
    CLIP_PARAMS,
    PARAMS,
    SELU_RULES,
    ParamRule,
    check_one_clipping,
    data_has,
    selu_forced,
    selu_violation,
)

Scalar = bool | int | float | str | None
# The rule of a param only a user's build_model knows: any value, lists allowed.
CUSTOM = ParamRule("floats", "a param of your build_model", per_layer=True)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass(frozen=True)
class Constant:
    """A fixed value: the param is set for every trial, never sampled (Optuna has no
    distribution for that; the rest are Optuna's own)."""

    value: Any = None


Distribution = IntDistribution | FloatDistribution | CategoricalDistribution | Constant


def _int_range(key: str, low: Any, high: Any, step: Any = 1, log: bool = False) -> IntDistribution:
    """Optuna's ``IntDistribution``, once its bounds are checked with errors naming the key."""
    for bound, v in (("low", low), ("high", high), ("step", step)):
        if not _is_number(v) or int(v) != v:
            raise ConfigError(f"{key}.{bound}={v!r}: an int param needs integer bounds")
    if low > high:
        raise ConfigError(f"{key}: low={low} > high={high}; need low <= high")
    if step < 1:
        raise ConfigError(f"{key}.step={step}: must be >= 1")
    if log and low < 1:
        raise ConfigError(f"{key}: log=true needs low >= 1 (got low={low})")
    if log and step != 1:
        raise ConfigError(f"{key}: log=true and step={step}; use step=1 with log")
    return IntDistribution(int(low), int(high), log=log, step=int(step))


def _float_range(
    key: str, low: Any, high: Any, log: bool = False, step: Any = None
) -> FloatDistribution:
    """Optuna's ``FloatDistribution``, once its bounds are checked."""
    for bound, v in (("low", low), ("high", high)):
        if not _is_number(v):
            raise ConfigError(f"{key}.{bound}={v!r}: must be a number")
    if low > high:
        raise ConfigError(f"{key}: low={low} > high={high}; need low <= high")
    if log and low <= 0:
        raise ConfigError(f"{key}: log=true needs low > 0 (got low={low})")
    if step is not None:
        if not _is_number(step) or step <= 0:
            raise ConfigError(f"{key}.step={step!r}: must be a number > 0")
        if log:
            raise ConfigError(f"{key}: log=true cannot be combined with step")
    return FloatDistribution(float(low), float(high), log=log, step=step)


def _choices(key: str, choices: Any) -> CategoricalDistribution:
    """Optuna's ``CategoricalDistribution``, once its choices are checked."""
    if not isinstance(choices, list | tuple):
        raise ConfigError(f"{key}.choices={choices!r}: must be a list of values")
    if not choices:
        raise ConfigError(f"{key}.choices: must list at least one value")
    for c in choices:
        if not (c is None or isinstance(c, bool | int | float | str)):
            raise ConfigError(f"{key}.choices: {c!r} is not a scalar (bool, int, float, str)")
    if len(set(map(repr, choices))) != len(choices):
        raise ConfigError(f"{key}.choices: {list(choices)} has duplicates")
    return CategoricalDistribution(tuple(choices))


def suggest(trial: optuna.Trial, name: str, dist: Distribution) -> Scalar:
    """Ask ``trial`` for ``name`` from ``dist`` through Optuna's public suggest API."""
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, list(dist.choices))
    raise TypeError(f"a constant is not sampled: {dist!r}")


def _bounds(dist: Distribution) -> list[Any]:
    """Values whose validity bounds the whole distribution (for the param rules)."""
    if isinstance(dist, IntDistribution | FloatDistribution):
        return [dist.low, dist.high]
    return possible_values(dist)


def possible_values(dist: Distribution) -> list[Any]:
    """The values a distribution can produce, or its bounds for continuous ranges."""
    if isinstance(dist, Constant):
        return [dist.value]
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    if isinstance(dist, IntDistribution) and (dist.high - dist.low) // dist.step <= 1000:
        return list(range(dist.low, dist.high + 1, dist.step))
    return [dist.low, dist.high]


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its distribution, when it applies, and whether it is per layer."""

    name: str
    distribution: Distribution
    when: Mapping[str, tuple[Scalar, ...]] = field(default_factory=dict)
    per_layer: str | None = None

    def applies(self, sampled: Mapping[str, Scalar]) -> bool:
        """Whether every condition holds for the values sampled so far."""
        return all(
            name in sampled and sampled[name] in values for name, values in self.when.items()
        )


_DIST_KEYS = {
    "int": ({"low", "high"}, {"step", "log"}),
    "float": ({"low", "high"}, {"log", "step"}),
    "categorical": ({"choices"}, set()),
}
_MODIFIERS = {"type", "when", "per_layer"}


def _parse_distribution(
    key: str, spec: Any, rule: ParamRule, lr_suggestion: float | None
) -> Distribution:
    if not isinstance(spec, Mapping):
        if isinstance(spec, list | tuple):
            if rule.kind != "floats":
                raise ConfigError(
                    f"{key}: a list is not a value; use {{type: categorical, choices: [...]}}"
                )
            return Constant([float(v) if _is_number(v) else v for v in spec])
        return Constant(spec)
    if "lr_find" in spec:
        return _from_lr_finder(key, spec, lr_suggestion)
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
        return _int_range(key, **args)
    if kind == "float":
        return _float_range(key, **args)
    return _choices(key, args["choices"])


@dataclass(frozen=True)
class SearchSpace:
    """An ordered set of params; order is the define-by-run sampling order."""

    name: str
    params: tuple[Param, ...]

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        key: str = "search_space",
        lr_suggestion: float | None = None,
        custom_params: bool = False,
    ) -> SearchSpace:
        """Parse and validate the ``search_space`` config group.

        ``lr_suggestion`` is the learning-rate finder's result, for params that take
        their range from it (``lr_find: {low: 0.1, high: 3}``). ``custom_params``: a
        user's ``build_model`` reads params of its own; names our registry does not know
        are then accepted with any value their distribution allows.

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
            if rule is None and not custom_params:
                raise ConfigError(
                    f"{pkey}: unknown hyperparameter; allowed are {', '.join(PARAMS)} "
                    "(or any name, with a build_model of your own: see the Python API)"
                )
            param = Param(
                str(name),
                _parse_distribution(pkey, spec, rule or CUSTOM, lr_suggestion),
                when=_parse_when(pkey, spec, seen),
                per_layer=_parse_per_layer(pkey, spec, seen, rule or CUSTOM),
            )
            for value in _bounds(param.distribution):
                if rule is not None and not rule.accepts(value):
                    raise ConfigError(
                        f"{pkey}: {value!r} is not allowed; {name} must be {rule.allowed()}"
                    )
            params.append(param)
            seen[param.name] = param
        ours = [p for p in params if p.name in PARAMS]
        _check_selu(key, ours)
        _check_applies(key, ours)
        _check_exclusive(key, ours)
        _check_constants(key, ours)
        return cls(str(config.get("name", "custom")), tuple(params))

    def define_by_run(self, trial: optuna.Trial) -> dict[str, Scalar]:
        """Sample one configuration; returns the constants (Ray merges them in).

        Conditional params are suggested only when their conditions hold, so they are
        absent (not defaulted) from trials where they do not apply.
        """
        sampled: dict[str, Any] = {}
        constants: dict[str, Any] = {}
        for p in self.params:
            if not p.applies(sampled):
                continue
            forced = selu_forced(sampled) if "activation" in sampled else {}
            if p.name in forced:  # a self-normalizing net fixes these: never sampled
                sampled[p.name] = constants[p.name] = forced[p.name]
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
                    value = suggest(trial, n, p.distribution)
                sampled[n] = value
        return constants

    def sample(self, trial: optuna.Trial) -> dict[str, Scalar]:
        """The full configuration of one trial (sampled and constant values)."""
        constants = self.define_by_run(trial)
        return {**trial.params, **constants}

    def fixed(self) -> dict[str, Any]:
        """The params fixed for every trial (e.g. the model the lr finder probes)."""
        return _fixed(self.params)

    def check_data(self, spec: Any, key: str = "search_space", transfer: bool = False) -> None:
        """Refuse params that would have no effect on this data (``regression_loss`` for
        a classifier, ``embedding_dim`` without categorical columns) or in this sweep
        (``reuse_layers`` without ``transfer.source``).

        Raises:
            ConfigError: naming the param and what the data (or the sweep) is.
        """
        for p in self.params:
            rule = PARAMS.get(p.name)
            if rule is None or not rule.needs or data_has(rule.needs, spec, transfer):
                continue
            if rule.needs == "transfer":
                raise ConfigError(
                    f"{key}.params.{p.name}: only has an effect with transfer.source (a "
                    "model to reuse), which this sweep does not set"
                )
            what = {"regression": "task=regression", "categorical": "categorical columns"}
            raise ConfigError(
                f"{key}.params.{p.name}: only has an effect with {what[rule.needs]}; "
                f"this data is {spec.task.kind}, {spec.inputs.describe()}"
            )

    @staticmethod
    def needs_lr_suggestion(config: Any) -> bool:
        """Whether a raw space config takes a range from the learning-rate finder."""
        raw = config.get("params") if isinstance(config, Mapping) else None
        return isinstance(raw, Mapping) and any(
            isinstance(spec, Mapping) and "lr_find" in spec for spec in raw.values()
        )


def _from_lr_finder(key: str, spec: Mapping[str, Any], suggestion: float | None) -> Distribution:
    """``{lr_find: {low: 0.1, high: 3}}``: a log range around the finder's suggestion."""
    factors = spec["lr_find"]
    if not isinstance(factors, Mapping) or set(factors) - {"low", "high"}:
        raise ConfigError(f"{key}.lr_find: must be {{low: FACTOR, high: FACTOR}}")
    low, high = factors.get("low", 0.1), factors.get("high", 3.0)
    if not (_is_number(low) and _is_number(high) and 0 < low <= high):
        raise ConfigError(f"{key}.lr_find: needs 0 < low <= high (got {low}, {high})")
    if suggestion is None:
        raise ConfigError(
            f"{key}.lr_find: no learning-rate finder result for this sweep name; "
            "run `sweep-lr-find name=...` with the same name and tracking.uri first"
        )
    return _float_range(key, suggestion * low, suggestion * high, log=True)


def _may_be(params: list[Param], name: str, value: Any) -> tuple[bool, bool]:
    """(may ``name`` take ``value`` in some trial, does it in every trial)."""
    for p in params:
        if p.name == name:
            values = possible_values(p.distribution)
            return value in values, all(v == value for v in values)
    default = PARAMS[name].default
    return default == value, default == value


def _check_selu(key: str, params: list[Param]) -> None:
    """The self-normalizing rules when activation may be selu: forced params come after
    `activation` (so they can be fixed for selu trials), and are refused if they
    contradict it in a space where every trial is selu."""
    may, always = _may_be(params, "activation", "selu")
    if not may:
        return
    names = [p.name for p in params]
    for p in params:
        if p.name not in SELU_RULES:
            continue
        if "activation" in names and names.index(p.name) < names.index("activation"):
            raise ConfigError(
                f"{key}.params.{p.name}: declare it after activation (activation may be "
                "selu, which fixes it: HOML 2e ch. 11, Summary and Practical Guidelines)"
            )
        why = [selu_violation(p.name, v) for v in possible_values(p.distribution)]
        if always and any(why):
            raise ConfigError(f"{key}.params.{next(w for w in why if w)}")


def _check_applies(key: str, params: list[Param]) -> None:
    """Refuse a param that would be set but have no effect in some trial
    (e.g. momentum with adam): no option is accepted and ignored."""
    by_name = {p.name: p for p in params}
    for p in params:
        rule = PARAMS[p.name]
        if not rule.applies:
            continue
        ok = False
        for governor, allowed in rule.applies:
            if governor in p.when:
                values: list[Any] = list(p.when[governor])
            elif governor in by_name:
                values = possible_values(by_name[governor].distribution)
            else:
                values = [PARAMS[governor].default]
            if all(v in allowed for v in values):
                ok = True
                break
        if not ok:
            needs = " or ".join(
                f"{g} is {a!r}" if not isinstance(a, tuple) else f"{g} in {list(a)}"
                for g, a in rule.applies
            )
            raise ConfigError(
                f"{key}.params.{p.name}: only has an effect when {needs}; add a `when` "
                "condition or fix that param"
            )
    if (
        "n_neurons" in by_name
        and by_name["n_neurons"].per_layer
        and any(v != "uniform" for v in _values(by_name, "layer_shape"))
    ):
        raise ConfigError(
            f"{key}.params.n_neurons.per_layer: per-layer sizes need layer_shape=uniform "
            "(pyramid and first_bigger derive the sizes from one n_neurons)"
        )


def _values(by_name: Mapping[str, Param], name: str) -> list[Any]:
    if name in by_name:
        return possible_values(by_name[name].distribution)
    return [PARAMS[name].default]


def _fixed(params: Iterable[Param]) -> dict[str, Any]:
    """The values every trial gets: unconditional, whole-model constants."""
    return {
        p.name: p.distribution.value
        for p in params
        if isinstance(p.distribution, Constant) and not p.when and not p.per_layer
    }


def _check_constants(key: str, params: list[Param]) -> None:
    """The fixed values together must make a valid model (e.g. piecewise lists agree)."""
    from trainables.params import resolve

    try:
        resolve(_fixed(params))
    except ValueError as exc:
        raise ConfigError(f"{key}.params: {exc}") from exc


def _check_exclusive(key: str, params: list[Param]) -> None:
    """The clipping rule (``trainables.params.check_one_clipping``) over the values each
    param may take."""
    clips = [
        p.name
        for p in params
        if p.name in CLIP_PARAMS and any(v > 0 for v in possible_values(p.distribution))
    ]
    try:
        check_one_clipping(clips)
    except ValueError as exc:
        raise ConfigError(f"{key}.params.{exc}") from exc


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


def _parse_per_layer(key: str, spec: Any, seen: Mapping[str, Param], rule: ParamRule) -> str | None:
    if not isinstance(spec, Mapping) or spec.get("per_layer") is None:
        return None
    count = spec["per_layer"]
    if not rule.per_layer:
        raise ConfigError(f"{key}.per_layer: this param has one value for the whole model")
    if count not in seen or not isinstance(seen[count].distribution, IntDistribution | Constant):
        raise ConfigError(
            f"{key}.per_layer={count}: must name an int param declared before it (e.g. n_hidden)"
        )
    return str(count)
