"""The encoder's architecture hyper-parameters, free of torch so configs load fast."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from che_bench.errors import ConfigError

if TYPE_CHECKING:
    from che_bench.encodings.base import ModelDims


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters (``models/*.yaml`` ``model:`` section)."""

    num_layers: int = 5
    d_model: int = 64
    num_heads: int = 8
    ffn_mult: int = 4
    dropout: float = 0.1

    @property
    def dims(self) -> ModelDims:
        from che_bench.encodings.base import ModelDims

        return ModelDims(self.d_model, self.num_heads, self.num_layers)


def resolve_model(preset: Any, override: Any) -> ModelConfig:
    """The preset's ``model:`` section with ``override`` on top: a ModelConfig, or a mapping
    of some of its fields (``--set model.d_model=128``, a sweep's ``overrides: {model: …}``)."""
    if isinstance(override, ModelConfig):
        return override
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    values = dataclasses.asdict(ModelConfig())
    for where, part in (("the preset's model", preset), ("model", override)):
        if part is None:
            continue
        if not isinstance(part, dict):
            raise ConfigError(f"{where} must be a mapping of {', '.join(sorted(fields))}")
        unknown = set(part) - fields
        if unknown:
            raise ConfigError(
                f"unknown model setting(s): {', '.join(sorted(map(str, unknown)))}; "
                f"valid: {', '.join(sorted(fields))}"
            )
        values.update(part)
    return ModelConfig(**values)
