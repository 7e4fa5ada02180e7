"""The model registry: one registration per model family.

A family is a frozen config dataclass (a subclass of :class:`ModelConfig`
naming its ``family``) and a model class built from it, tied together by
:func:`register_model`::

    @dataclass(frozen=True)
    class MyConfig(ModelConfig):
        family: ClassVar[str] = "mine"
        width: int = 32

    @register_model(MyConfig)
    class MyModel(RegisteredModel):
        def __init__(self, in_channels: int, out_channels: int, **options: Any) -> None:
            super().__init__()
            self.model_config = MyConfig(in_channels, out_channels, **options)
            ...

That one registration gives the model its ``.config`` (the JSON dict a run
directory stores in ``config.json``), makes :func:`mgno.nn.build_model`
accept ``{"model": "mine", ...}``, and adds ``mine`` to the CLI's
``--model`` choices and to :data:`MODEL_FAMILIES`.

The registry is filled when the model modules are imported (``import mgno``
does it) and is not meant to change afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from torch import nn

from mgno.errors import InputError
from mgno.vocab import one_of

C = TypeVar("C", bound="ModelConfig")
M = TypeVar("M", bound=type[nn.Module])


def _plain(value: Any) -> Any:
    """Tuples as JSON lists, recursively."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def as_int(value: Any, where: str) -> int:
    """``value`` as an int; a one-line :class:`InputError` naming ``where`` if it is none.

    Integers of any kind (numpy's too), integral floats and digit strings pass.
    """
    if not isinstance(value, bool):
        with contextlib.suppress(TypeError):
            return operator.index(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
    raise InputError(f"{where}: found {value!r}, expected an integer")


def as_grid(value: Any, dim: int, where: str) -> tuple[int, ...] | None:
    """A grid (nodes per axis, ``dim`` of them) as a tuple of ints, or None."""
    if value is None:
        return None
    grid = tuple(as_int(n, where) for n in value)
    if len(grid) != dim:
        raise InputError(
            f"{where}: expected {dim} sizes (one per spatial axis), got {len(grid)}: {list(grid)}"
        )
    return grid


@dataclass(frozen=True)
class ModelConfig:
    """Base of every model family's config: a frozen, JSON-serialisable dataclass.

    Subclasses set the class variable ``family`` and add their fields, each
    with a default; ``__post_init__`` normalises values (tuples for lists,
    defaults derived from other fields) so that equal models have equal
    configs.

    Attributes
    ----------
    in_channels, out_channels
        Channels of the input function(s) and of the output.
    """

    family: ClassVar[str] = ""
    in_channels: int
    out_channels: int

    def __post_init__(self) -> None:
        self._set("in_channels", as_int(self.in_channels, self._where("in_channels")))
        self._set("out_channels", as_int(self.out_channels, self._where("out_channels")))

    def _set(self, name: str, value: Any) -> None:
        """Store a normalised field value (the dataclass is frozen to everyone else)."""
        object.__setattr__(self, name, value)

    def _where(self, name: str) -> str:
        return f"{self.family} config: field {name!r}"

    def kwargs(self) -> dict[str, Any]:
        """The fields as keyword arguments of the model class."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_dict(self) -> dict[str, Any]:
        """The JSON dict stored as ``model.config``: ``{"model": family, **fields}``."""
        return {"model": self.family, **{k: _plain(v) for k, v in self.kwargs().items()}}

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (and normalised again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls: type[C], config: Mapping[str, Any]) -> C:
        """Parse a config dict (``model.config``, a run's ``config.json``).

        Raises
        ------
        InputError
            On another family, unknown keys or missing channel counts.
        """
        cfg = dict(config)
        family = cfg.pop("model", cls.family)
        if family != cls.family:
            raise InputError(f"model: expected {cls.family!r} for {cls.__name__}, got {family!r}")
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(cfg) - set(allowed))
        if unknown:
            raise InputError(
                f"{cls.family} config: unknown key(s) {', '.join(unknown)}; expected some of "
                f"{', '.join(sorted(allowed))}"
            )
        missing = [k for k in ("in_channels", "out_channels") if k not in cfg]
        if missing:
            raise InputError(f"{cls.family} config: missing key(s) {', '.join(missing)}")
        return cls(**cfg)

    @classmethod
    def coerce(cls: type[C], config: ModelConfig | Mapping[str, Any]) -> C:
        """``config`` itself if it is one of ours, else :meth:`from_dict` of it."""
        if isinstance(config, ModelConfig):
            if not isinstance(config, cls):
                raise InputError(
                    f"model: expected {cls.family!r} for {cls.__name__}, got {config.family!r}"
                )
            return config
        return cls.from_dict(config)


class RegisteredModel(nn.Module):
    """Base of the registered model classes.

    ``model_config`` holds the frozen config; ``config`` is its JSON dict, so
    ``mgno.build_model(model.config)`` rebuilds the same architecture.
    """

    config_class: ClassVar[type[ModelConfig]]
    model_config: ModelConfig

    @property
    def config(self) -> dict[str, Any]:
        """The JSON dict of :attr:`model_config` (a fresh copy on every access)."""
        return self.model_config.to_dict()

    @classmethod
    def from_config(cls, config: ModelConfig | Mapping[str, Any]) -> RegisteredModel:
        """Build from a config dataclass or dict (as in ``model.config``); unknown keys raise."""
        return cls(**cls.config_class.coerce(config).kwargs())


@dataclass(frozen=True)
class ModelEntry:
    """One registered family.

    Attributes
    ----------
    family
        The name (``config["model"]``, ``--model``).
    config_class, model_class
        The config dataclass and the model class built from it.
    baseline
        True for the networks mgno compares against (they take ``width``
        where MgNO takes ``channels``); False for MgNO itself.
    """

    family: str
    config_class: type[ModelConfig]
    model_class: type[RegisteredModel]
    baseline: bool


_REGISTRY: dict[str, ModelEntry] = {}


class FamilyView(Mapping[str, ModelEntry]):
    """A read-only, live view of the registered families (family -> :class:`ModelEntry`).

    Works wherever a word list does: ``"fno" in MODEL_FAMILIES``,
    ``", ".join(MODEL_FAMILIES)``, argparse ``choices=MODEL_FAMILIES``.
    """

    def __init__(self, keep: Callable[[ModelEntry], bool]) -> None:
        self._keep = keep

    def _selected(self) -> dict[str, ModelEntry]:
        """MgNO first, then the baselines, each in registration order."""
        entries = sorted(_REGISTRY.values(), key=lambda e: e.baseline)
        return {e.family: e for e in entries if self._keep(e)}

    def __getitem__(self, family: str) -> ModelEntry:
        return self._selected()[family]

    def __iter__(self) -> Iterator[str]:
        return iter(self._selected())

    def __len__(self) -> int:
        return len(self._selected())

    def __repr__(self) -> str:
        return f"FamilyView({list(self)})"


#: Every registered family: MgNO, then the baselines in registration order.
MODEL_FAMILIES = FamilyView(lambda entry: True)
#: The families other than MgNO (neuraloperator's FNO, TFNO, UNO and the U-Net).
BASELINE_FAMILIES = FamilyView(lambda entry: entry.baseline)


def register_model(config_class: type[ModelConfig], *, baseline: bool = True) -> Callable[[M], M]:
    """Class decorator registering a model class under ``config_class.family``.

    Parameters
    ----------
    config_class
        The family's frozen config dataclass.
    baseline
        False only for MgNO (see :class:`ModelEntry`).
    """

    def register(model_class: M) -> M:
        family = config_class.family
        if not family or family in _REGISTRY:
            raise RuntimeError(f"model family {family!r} is empty or registered twice")
        model_class.config_class = config_class
        _REGISTRY[family] = ModelEntry(family, config_class, model_class, baseline)
        return model_class

    return register


def model_entry(family: str, where: str = "model") -> ModelEntry:
    """The registration of ``family``; a one-line InputError listing the families if unknown."""
    return _REGISTRY[one_of(family, MODEL_FAMILIES, where, "family")]


def parse_config(config: ModelConfig | Mapping[str, Any]) -> ModelConfig:
    """A config dataclass from a dataclass or a dict (``{"model": FAMILY, ...}``, default mgno)."""
    if isinstance(config, ModelConfig):
        return config
    return model_entry(config.get("model", "mgno")).config_class.from_dict(config)
