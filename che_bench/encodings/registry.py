"""The encoding registry: ``@register_encoding`` on an :class:`Encoding` subclass.

Options are the keyword-only parameters of the class's ``__init__`` (after ``dims`` and
``causal``): their annotations give the type that ``--pe-opt key=value`` strings are parsed
into, and their defaults are recorded in every leaderboard row.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from che_bench.encodings.base import Encoding, ModelDims
from che_bench.errors import ConfigError, UnknownNameError
from che_bench.registry import Registry


@dataclass(frozen=True)
class OptionSpec:
    """One constructor option: its type annotation and default."""

    name: str
    annotation: Any
    default: Any

    def parse(self, raw: Any, encoding: str) -> Any:
        """Convert ``raw`` (a CLI string or a YAML value) to this option's type."""
        kind = self.annotation
        try:
            if typing.get_origin(kind) is Literal:
                choices = typing.get_args(kind)
                value = type(choices[0])(raw)
                if value not in choices:
                    raise ValueError(f"expected one of {', '.join(map(str, choices))}")
                return value
            if kind is bool:
                if isinstance(raw, bool):
                    return raw
                text = str(raw).strip().lower()
                if text in ("1", "true", "yes", "on"):
                    return True
                if text in ("0", "false", "no", "off"):
                    return False
                raise ValueError("expected true or false")
            if kind is int:
                if isinstance(raw, float) and not raw.is_integer():
                    raise ValueError("expected an integer")
                return int(str(raw).strip()) if isinstance(raw, str) else int(raw)
            if kind is float:
                return float(raw)
            if kind is str:
                return str(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"bad value {raw!r} for option {self.name!r} of encoding {encoding!r}: {exc}"
            ) from None
        return raw

    def describe(self) -> str:
        kind = self.annotation
        if typing.get_origin(kind) is Literal:
            type_name = "|".join(map(str, typing.get_args(kind)))
        else:
            type_name = getattr(kind, "__name__", str(kind))
        return f"{self.name}: {type_name} = {self.default!r}"


@dataclass(frozen=True)
class EncodingEntry:
    """What the registry holds for one name."""

    name: str
    factory: Callable[..., Encoding]
    description: str
    options: Mapping[str, OptionSpec]
    has_bias: bool
    family: str = ""
    #: Options added after rows were stored, with the default under which they enter a
    #: config's hash only when changed (so earlier rows keep their run_key).
    hashed_if_changed: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def build(
        self, dims: ModelDims | None = None, *, causal: bool = False, **options: Any
    ) -> Encoding:
        resolved = self.resolve_options(options)
        encoding = self.factory(dims or ModelDims(), causal=causal, **resolved)
        encoding.name = self.name
        encoding.options = resolved
        return encoding

    def resolve_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and type ``options``; fill in defaults for the rest."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            valid = ", ".join(spec.describe() for spec in self.options.values()) or "none"
            raise UnknownNameError(
                f"encoding {self.name!r} has no option {', '.join(map(repr, unknown))}; "
                f"valid options: {valid}"
            )
        return {
            key: spec.parse(options[key], self.name) if key in options else spec.default
            for key, spec in self.options.items()
        }


def options_of(cls: type) -> dict[str, OptionSpec]:
    """The keyword-only ``__init__`` parameters of ``cls`` (minus ``causal``) as options."""
    hints = typing.get_type_hints(cls.__init__)
    specs = {}
    for param in inspect.signature(cls.__init__).parameters.values():
        if param.kind is not param.KEYWORD_ONLY or param.name == "causal":
            continue
        if param.default is param.empty:
            raise TypeError(f"{cls.__name__}: option {param.name!r} needs a default")
        specs[param.name] = OptionSpec(param.name, hints.get(param.name, Any), param.default)
    return specs


ENCODINGS: Registry[EncodingEntry] = Registry("encoding", entry_point_group="che_bench.encodings")


def register_encoding(name: str, *, description: str | None = None, family: str = ""):
    """Class decorator registering an :class:`Encoding` subclass under ``name``.

    ``dape-<name>`` and ``dapev2-<name>`` are generated automatically when the class
    implements ``bias`` (``has_bias = True``).
    """

    def decorate(cls: type[Encoding]) -> type[Encoding]:
        if not (isinstance(cls, type) and issubclass(cls, Encoding)):
            raise TypeError(f"@register_encoding({name!r}) needs an Encoding subclass")
        doc = (cls.__doc__ or "").strip().splitlines()
        ENCODINGS.add(
            name,
            EncodingEntry(
                name=name,
                factory=cls,
                description=description or (doc[0] if doc else cls.description),
                options=options_of(cls),
                has_bias=cls.has_bias,
                family=family or cls.__module__.rsplit(".", 1)[-1],
                hashed_if_changed=dict(cls.options_hashed_if_changed),
            ),
        )
        return cls

    return decorate


def get_encoding(name: str) -> EncodingEntry:
    """The registry entry for ``name`` (did-you-mean on a typo)."""
    return ENCODINGS.get(name)


def build_encoding(
    name: str,
    dims: ModelDims | None = None,
    *,
    causal: bool = False,
    options: Mapping[str, Any] | None = None,
) -> Encoding:
    """Construct the encoding ``name`` with validated ``options``."""
    return get_encoding(name).build(dims, causal=causal, **dict(options or {}))


def list_encodings(pattern: str = "*") -> list[str]:
    """Registered encoding names matching a shell-style wildcard, plugins included."""
    return ENCODINGS.list(pattern)
