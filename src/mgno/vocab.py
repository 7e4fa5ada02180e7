"""Every fixed word list of mgno, once, each with its validator.

A :class:`WordList` is a tuple of the allowed words (so ``in``, ``join``,
``list()``, JSON and argparse ``choices=`` see the plain words) that also
knows the option it belongs to and how to check a value against it:
``BOUNDARY_CONDITIONS.check("reflect")`` returns ``"neumann"``, and an unknown
value raises :class:`~mgno.errors.InputError` with one line naming the option,
the value and the allowed words.

Model families are not here: they are whatever is registered with
:func:`mgno.nn.registry.register_model`, and that registry validates names
with :func:`one_of` below.

This module sits below everything else (it imports only :mod:`mgno.errors`),
so the solvers, the data schema, the networks, training and the CLI all read
their words from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from mgno.errors import InputError


def one_of(
    value: Any,
    words: Iterable[str],
    where: str,
    noun: str = "",
    aliases: Mapping[str, str] | None = None,
) -> str:
    """``value`` as one of ``words`` (after ``aliases``); raise a one-line InputError if not.

    Parameters
    ----------
    value
        The word to check; compared as given (callers normalise case if they
        accept any case).
    words
        The allowed words.
    where
        The option or field named in the message, e.g. ``"--loss"``.
    noun
        What a word is (``"condition"``, ``"family"``), for the message.
    aliases
        Other spellings accepted for some words.

    Raises
    ------
    InputError
        ``"{where}: unknown {noun} {value!r}; expected one of a, b, c"``.
    """
    allowed = tuple(words)
    word = (aliases or {}).get(value, value) if isinstance(value, str) else value
    if word not in allowed:
        what = f"unknown {noun} {value!r}" if noun else f"unknown {value!r}"
        raise InputError(f"{where}: {what}; expected one of {', '.join(allowed)}")
    return word


class WordList(tuple):
    """The allowed words of one option, a tuple of str with a validator.

    Parameters
    ----------
    option
        The option or field the words belong to, used in error messages.
    noun
        What one word is (``"condition"``, ``"loss"``...), used in messages.
    words
        The allowed words, in the order they are listed to users.
    aliases
        Other accepted spellings, mapped to words (not part of the tuple).
    """

    option: str
    noun: str
    aliases: Mapping[str, str]

    def __new__(
        cls,
        option: str,
        noun: str,
        words: Iterable[str],
        aliases: Mapping[str, str] | None = None,
    ) -> WordList:
        self = super().__new__(cls, tuple(words))
        self.option = option
        self.noun = noun
        self.aliases = MappingProxyType(dict(aliases or {}))
        return self

    def __reduce__(self) -> tuple:
        return (type(self), (self.option, self.noun, tuple(self), dict(self.aliases)))

    def check(self, value: Any, where: str | None = None) -> str:
        """``value`` as one of the words (aliases resolved); InputError naming ``where``."""
        return one_of(value, self, where or self.option, self.noun, self.aliases)


#: Boundary condition of one spatial axis (nn padding, solvers, data metadata).
BOUNDARY_CONDITIONS = WordList(
    "boundary",
    "condition",
    ("dirichlet", "neumann", "periodic"),
    # torch's padding names, accepted by the networks
    aliases={"zeros": "dirichlet", "zero": "dirichlet", "reflect": "neumann",
             "circular": "periodic"},
)

#: What an HDF5 data set holds: steady input/output pairs or trajectories.
DATA_KINDS = WordList("kind", "kind", ("steady", "trajectory"))
STEADY, TRAJECTORY = DATA_KINDS

#: How a model is trained on the data: steady pairs, one step t -> t+1, or k -> k frames.
PROTOCOLS = WordList("protocol", "protocol", ("steady", "one-step", "10-10"))

#: Which steps of an unrolled one-step training window the gradient flows through:
#: ``last`` (pushforward: the earlier steps run without gradients) or ``all``.
UNROLL_GRADIENTS = WordList("unroll-grad", "mode", ("last", "all"))

#: Training losses (:func:`mgno.train.losses.get_loss`).
LOSSES = WordList("loss", "loss", ("rel_l2", "rel_h1_fourier", "rel_h1_fd"))

#: Gaussian normaliser of inputs or outputs.
NORMALIZERS = WordList("normalizer", "kind", ("pointwise", "scalar", "none"))

#: Optimisers, learning-rate schedules and when the schedule steps.
OPTIMIZERS = WordList("optimizer", "optimizer", ("adam", "adamw"))
SCHEDULERS = WordList("scheduler", "scheduler", ("onecycle", "none"))
SCHEDULER_STEPS = WordList("scheduler_step", "step", ("epoch", "step"))

#: Which grids a run trains on (:mod:`mgno.train.phases`): ``fine``, the data's grid only;
#: ``coarse-to-fine``, first on the data restricted to coarser grids, then on the data's.
GRID_SCHEDULES = WordList("grid-schedule", "schedule", ("fine", "coarse-to-fine"))

#: What the coarse phases of ``coarse-to-fine`` hand to the next phase's network:
#: ``levels`` (the coarse network becomes levels 2..L of the finer one, whose new finest
#: level starts as injection and interpolation) or ``all`` (one network on every grid).
CARRY_MODES = WordList("carry", "mode", ("levels", "all"))

#: How a trained model runs on a grid other than its training grid (:mod:`mgno.nn.resolution`).
RESOLUTION_STRATEGIES = WordList(
    "resolution-strategy", "", ("resample", "multilevel", "native")
)

#: Normalisation after each prolongation inside an MgNO layer (:mod:`mgno.nn.multigrid`);
#: ``layer-grid`` is the authors' LayerNorm over (channels, *level grid), tied to one grid.
MGNO_NORMS = WordList("norm", "kind", ("none", "group", "instance", "layer-grid"))

#: Where an MgNO layer normalises: after each prolongation inside its multigrid cycle
#: (the authors' Navier-Stokes network), or once on the cycle's output (their Helmholtz one).
MGNO_NORM_PLACES = WordList("norm_at", "place", ("prolongation", "output"))

#: The last map of an MgNO network: a 1x1 convolution, or one more multigrid cycle
#: (the authors' Helmholtz network).
MGNO_PROJECTIONS = WordList("projection", "kind", ("pointwise", "multigrid"))

#: Extra input channels a network computes from the grid (:mod:`mgno.nn.positional`).
POSITIONAL = WordList("positional", "kind", ("none", "coords"))

#: Experiment loggers of a run (:mod:`mgno.train.loggers`); metrics.jsonl is always written.
LOGGERS = WordList("log", "logger", ("none", "tensorboard"))

#: How an imported array holds its channels (:mod:`mgno.data.convert`): ``auto`` tells
#: from the shapes (and refuses when two readings fit), ``channels-first`` (N, C, *grid),
#: ``channels-last`` (N, *grid, C), ``no-channel`` (N, *grid).
LAYOUTS = WordList("layout", "layout", ("auto", "channels-first", "channels-last", "no-channel"))

__all__ = [
    "BOUNDARY_CONDITIONS",
    "CARRY_MODES",
    "GRID_SCHEDULES",
    "POSITIONAL",
    "DATA_KINDS",
    "LAYOUTS",
    "LOGGERS",
    "LOSSES",
    "MGNO_NORMS",
    "MGNO_NORM_PLACES",
    "MGNO_PROJECTIONS",
    "NORMALIZERS",
    "OPTIMIZERS",
    "PROTOCOLS",
    "RESOLUTION_STRATEGIES",
    "SCHEDULERS",
    "SCHEDULER_STEPS",
    "STEADY",
    "TRAJECTORY",
    "UNROLL_GRADIENTS",
    "WordList",
    "one_of",
]
