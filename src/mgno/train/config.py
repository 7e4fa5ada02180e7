"""The training recipe: one flat, JSON-serialisable dataclass.

The first block of fields is exactly the ``"train"`` dict of a preset
(:func:`mgno.presets.get_preset`); the rest are mgno's own knobs with defaults.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from mgno.errors import InputError
from mgno.vocab import (
    CARRY_MODES,
    GRID_SCHEDULES,
    LOGGERS,
    NORMALIZERS,
    OPTIMIZERS,
    PROTOCOLS,
    SCHEDULER_STEPS,
    SCHEDULERS,
    UNROLL_GRADIENTS,
)
from mgno.vocab import LOSSES as LOSS_NAMES

_NUMBER = (int, float)
#: Field -> (accepted types, whether None is accepted).
_FIELD_TYPES: dict[str, tuple[tuple[type, ...], bool]] = {
    **{k: ((str,), False) for k in (
        "optimizer", "scheduler", "scheduler_step", "loss", "normalizer_inputs",
        "normalizer_outputs", "protocol", "device", "unroll_grad", "log", "grid_schedule")},
    "carry": ((str,), True),
    "phase_epochs": ((list,), True),
    **{k: (_NUMBER, False) for k in ("lr", "weight_decay", "val_fraction", "input_noise")},
    "grad_clip": (_NUMBER, True),
    **{k: ((int,), False) for k in (
        "epochs", "batch_size", "seed", "steps_in", "steps_out", "start_frame", "unroll",
        "log_images_every")},
    **{k: ((int,), True) for k in ("train_steps", "eval_batch_size", "k_max", "coarse_levels")},
    **{k: ((bool,), False) for k in ("bf16", "compile")},
}


#: Recipe fields added after runs were first written: a run that predates one computes
#: as with its default (see :func:`mgno.train.run_dir.run_fingerprint`).
LATER_FIELDS = ("unroll", "unroll_grad", "input_noise", "grid_schedule", "coarse_levels",
                "phase_epochs", "carry")

#: ``coarse-to-fine`` without ``coarse_levels`` / ``carry``: one coarse grid (half the
#: nodes per axis), and the coarse network carried into levels 2..L of the fine one
#: (docs/coarse_to_fine.md says why).
DEFAULT_COARSE_LEVELS = 1
DEFAULT_CARRY = "levels"


def default_phase_epochs(epochs: int, phases: int) -> list[int]:
    """``epochs`` split over ``phases`` grids, coarsest first: equal shares, the rest to the finest.

    Examples: 12 epochs over 2 phases -> [6, 6]; 12 over 3 -> [4, 4, 4]; 10 over 3 -> [3, 3, 4].

    Raises
    ------
    InputError
        When ``epochs < phases`` (every phase needs an epoch).
    """
    if epochs < phases:
        raise InputError(
            f"--epochs: {epochs} epochs cannot give each of the {phases} grid phases "
            f"(--coarse-levels {phases - 1} and the data's grid) an epoch; expected at "
            f"least {phases}"
        )
    share = epochs // phases
    return [share] * (phases - 1) + [epochs - share * (phases - 1)]


def parse_phase_epochs(value: Any) -> Any:
    """``"4,4,4"`` or a tuple as a list of ints; other values are returned as given."""
    if isinstance(value, str):
        try:
            return [int(part) for part in value.split(",")]
        except ValueError:
            raise InputError(
                f"--phase-epochs: found {value!r}, expected epochs per phase, coarsest grid "
                "first, as integers joined by commas (e.g. 4,4,4)"
            ) from None
    return list(value) if isinstance(value, tuple) else value


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run.

    Attributes
    ----------
    optimizer, lr, weight_decay, epochs, batch_size, scheduler, scheduler_step,
    loss, normalizer_inputs, normalizer_outputs, grad_clip, protocol:
        The preset recipe (the paper's, see docs/training.md): Adam/AdamW with
        weight decay, OneCycle stepped per epoch or per optimiser step, loss ``rel_l2`` /
        ``rel_h1_fourier`` / ``rel_h1_fd``, Gaussian normalisers, optional
        gradient-norm clipping, and the data protocol (``steady`` pairs,
        teacher-forced ``one-step`` on trajectories, or ``10-10``).
    seed:
        Seeds the model's initial weights and the data order.
    val_fraction:
        Share of the training file held out for validation when no ``--val``
        file is given (0 disables validation; then the last epoch is "best").
    steps_in, steps_out:
        Trajectory protocols: frames in the input window and frames predicted.
        ``one-step``: window 1, evaluation rolls out ``steps_out`` steps.
        ``10-10``: window ``steps_in`` (10), ``steps_out`` (10) predicted
        autoregressively; training backpropagates through the rollout.
    train_steps:
        ``one-step``: the pairs ``t -> t+1`` use ``t < start_frame + train_steps``
        (default: all the frames of the window being rolled out).
    start_frame:
        Trajectories: frames before this one are not used, in training,
        validation, evaluation, prediction or plots. The ``navier-stokes``
        preset sets 1: the FNO data (and mgno's generator) store the initial
        vorticity as frame 0, and the paper's NS2 protocol starts from the
        first solved frame (t = 1), as the authors' code does; the step from
        the random initial field is a different, harder map (docs/training.md).
    unroll:
        ``one-step``: train on windows of ``unroll`` consecutive steps
        ``t -> t+1 -> ... -> t+unroll`` from the true frame ``t``, the model fed
        its own predictions; the loss is the one of the last step against frame
        ``t + unroll``. 1 (default) is plain teacher-forced one-step training.
        The windows stay inside the frames one-step training uses (the last
        target is frame ``start_frame + train_steps``), so there are
        ``unroll - 1`` fewer windows than pairs per trajectory.
    unroll_grad:
        ``"last"`` (default, the pushforward trick of Brandstetter et al.): the
        first ``unroll - 1`` steps run without gradients, which flow through the
        last step only; ``"all"``: backpropagate through the whole window.
    input_noise:
        Trajectories: Gaussian noise of ``input_noise`` times the per-channel
        standard deviation of the training frames (over trajectories, frames
        and nodes) is added to the input frames of every training batch, never
        to validation or evaluation. Drawn from a generator seeded by
        ``(seed, epoch, sample)``, so a resumed run draws the same noise.
        0 (default) adds none.
    k_max:
        Fourier H1 loss: modes with some ``|k_i| >= k_max`` are dropped (the
        paper's 20, chosen at 211x211); ``None`` (``"all"`` on input) keeps
        every mode. On coarse grids the cut can hide the highest modes of the
        error from the loss: see docs/training.md.
    bf16:
        bfloat16 autocast (GPU only; ignored on CPU).
    compile:
        ``torch.compile`` the network's forward pass (in place; weights and
        checkpoints unchanged). The first step compiles for 15-30 s on a
        2-core CPU; MgNO's training steps then ran 1.2-1.3x faster at
        211x211 and 10-13 % slower at 64x64 (benchmarks/RESULTS.md, "Model
        speed and memory"). neuraloperator's FNO got slower compiled.
    device:
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    eval_batch_size:
        Batch size for validation and evaluation (default: ``batch_size``).
    log:
        Experiment logger besides ``metrics.jsonl``: ``"none"`` or
        ``"tensorboard"`` (event files in ``RUN_DIR/tensorboard/``, needs
        ``pip install 'mgno[log]'``; see docs/logging.md).
    log_images_every:
        With a logger: an image of one validation prediction, its truth and
        its error every this many epochs and at the last one (0: never).
    grid_schedule:
        ``"fine"`` (default): train on the data's grid. ``"coarse-to-fine"``
        (MgNO): first on the data restricted to coarser grids (every other node
        per axis, ``coarse_levels`` times), then on the data's grid, each
        phase's weights carried into the next phase's network
        (:mod:`mgno.train.phases`, docs/coarse_to_fine.md).
    coarse_levels:
        ``coarse-to-fine``: number of coarse grids (default 1); None otherwise.
    phase_epochs:
        ``coarse-to-fine``: epochs per phase, coarsest grid first, one per
        coarse grid and one for the data's grid, summing to ``epochs``
        (default: equal shares, the rest to the data's grid); None otherwise.
    carry:
        ``coarse-to-fine``: ``"levels"`` (default; the coarse network becomes
        levels 2..L of the next one, whose new finest level starts as
        injection and linear interpolation) or ``"all"`` (one network, every
        weight as it is, on every grid); None otherwise.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 100
    batch_size: int = 8
    scheduler: str = "onecycle"
    scheduler_step: str = "epoch"
    loss: str = "rel_l2"
    normalizer_inputs: str = "pointwise"
    normalizer_outputs: str = "pointwise"
    grad_clip: float | None = None
    protocol: str = "steady"
    # mgno's own
    seed: int = 0
    val_fraction: float = 0.1
    steps_in: int = 10
    steps_out: int = 10
    train_steps: int | None = None
    start_frame: int = 0
    unroll: int = 1
    unroll_grad: str = "last"
    input_noise: float = 0.0
    k_max: int | None = 20
    bf16: bool = False
    compile: bool = False
    device: str = "auto"
    eval_batch_size: int | None = None
    log: str = "none"
    log_images_every: int = 5
    grid_schedule: str = "fine"
    coarse_levels: int | None = None
    phase_epochs: list[int] | None = None
    carry: str | None = None

    def __post_init__(self) -> None:
        self.k_max = self.canonical("k_max", self.k_max)
        self.phase_epochs = self.canonical("phase_epochs", self.phase_epochs)
        self.validate()
        if self.grid_schedule == "coarse-to-fine":
            self._fill_schedule()

    @staticmethod
    def canonical(name: str, value: Any) -> Any:
        """The stored form of an option's value (``k_max="all"`` is stored as None,
        ``phase_epochs="4,4,4"`` as ``[4, 4, 4]``)."""
        if name == "k_max" and isinstance(value, str) and value.strip().lower() == "all":
            return None
        if name == "phase_epochs":
            return parse_phase_epochs(value)
        return value

    def _fill_schedule(self) -> None:
        """``coarse-to-fine``: the defaults of the unset schedule fields, then their checks."""
        if self.coarse_levels is None:
            self.coarse_levels = DEFAULT_COARSE_LEVELS
        if self.carry is None:
            self.carry = DEFAULT_CARRY
        phases = self.coarse_levels + 1
        if self.phase_epochs is None:
            self.phase_epochs = default_phase_epochs(self.epochs, phases)
        if len(self.phase_epochs) != phases:
            raise InputError(
                f"--phase-epochs: {len(self.phase_epochs)} phases "
                f"({','.join(map(str, self.phase_epochs))}) for --coarse-levels "
                f"{self.coarse_levels}; expected {phases}, one per coarse grid and one for "
                "the data's grid, coarsest first"
            )
        if sum(self.phase_epochs) != self.epochs:
            raise InputError(
                f"--phase-epochs: {','.join(map(str, self.phase_epochs))} sum to "
                f"{sum(self.phase_epochs)} epochs, but --epochs is {self.epochs}; expected "
                "the same total (or give only one of them)"
            )

    def validate(self) -> None:
        """Raise :class:`InputError` naming the first field with a bad value."""
        self._check_types()
        choices = {
            "optimizer": OPTIMIZERS,
            "scheduler": SCHEDULERS,
            "scheduler_step": SCHEDULER_STEPS,
            "loss": LOSS_NAMES,
            "normalizer_inputs": NORMALIZERS,
            "normalizer_outputs": NORMALIZERS,
            "protocol": PROTOCOLS,
            "unroll_grad": UNROLL_GRADIENTS,
            "log": LOGGERS,
            "grid_schedule": GRID_SCHEDULES,
            "carry": CARRY_MODES,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value is None and name == "carry":
                continue
            if value not in allowed:
                raise InputError(
                    f"train config: field {name!r} is {value!r}, "
                    f"expected one of {', '.join(allowed)}"
                )
        self._check_numbers()
        self._check_schedule()

    def _check_schedule(self) -> None:
        """The schedule fields: only with ``coarse-to-fine``; counts >= 1."""
        if self.grid_schedule != "coarse-to-fine":
            for name in ("coarse_levels", "phase_epochs", "carry"):
                if getattr(self, name) is not None:
                    raise InputError(
                        f"--{name.replace('_', '-')}: found {getattr(self, name)!r} with "
                        f"--grid-schedule {self.grid_schedule}; expected it only with "
                        "--grid-schedule coarse-to-fine"
                    )
            return
        if self.coarse_levels is not None and self.coarse_levels < 1:
            raise InputError(
                f"--coarse-levels: found {self.coarse_levels}, expected an integer >= 1"
            )
        epochs = self.phase_epochs
        if epochs is not None and (not epochs or not all(
                isinstance(e, int) and not isinstance(e, bool) and e >= 1 for e in epochs)):
            raise InputError(
                f"--phase-epochs: found {epochs!r:.60}, expected one integer >= 1 per phase"
            )

    def _check_numbers(self) -> None:
        """The range of every numeric field (types already checked)."""
        positive_int = ("epochs", "batch_size", "steps_in", "steps_out", "unroll")
        for name in positive_int:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(
                    f"train config: field {name!r} is {value!r}, expected an integer >= 1"
                )
        for name in ("lr", "weight_decay", "grad_clip", "input_noise"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise InputError(
                    f"train config: field {name!r} is {value!r}, expected a finite number"
                )
        if self.seed < 0:
            raise InputError(f"train config: field 'seed' is {self.seed!r}, expected >= 0")
        if not (self.lr > 0):
            raise InputError(f"train config: field 'lr' is {self.lr!r}, expected a positive number")
        if self.input_noise < 0:
            raise InputError(
                f"train config: field 'input_noise' is {self.input_noise!r}, expected a "
                "number >= 0 (a multiple of the frames' standard deviation)"
            )
        if self.weight_decay < 0:
            raise InputError(
                f"train config: field 'weight_decay' is {self.weight_decay!r}, expected >= 0"
            )
        if self.grad_clip is not None and not (self.grad_clip > 0):
            raise InputError(
                f"train config: field 'grad_clip' is {self.grad_clip!r}, "
                "expected a positive number or null"
            )
        if self.k_max is not None and (
            isinstance(self.k_max, bool) or not isinstance(self.k_max, int) or self.k_max < 1
        ):
            raise InputError(
                f"train config: field 'k_max' is {self.k_max!r}, "
                "expected an integer >= 1 or 'all'"
            )
        for name in ("start_frame", "log_images_every"):
            if getattr(self, name) < 0:
                raise InputError(
                    f"train config: field {name!r} is {getattr(self, name)!r}, "
                    "expected an integer >= 0"
                )
        if not (0.0 <= self.val_fraction < 1.0):
            raise InputError(
                f"train config: field 'val_fraction' is {self.val_fraction!r}, "
                "expected 0 <= value < 1"
            )

    def _check_types(self) -> None:
        for name, (types, optional) in _FIELD_TYPES.items():
            value = getattr(self, name)
            if value is None and optional:
                continue
            if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
                want = " or ".join(t.__name__ for t in types) + (" or null" if optional else "")
                raise InputError(
                    f"train config: field {name!r} is {value!r:.60} "
                    f"({type(value).__name__}), expected {want}"
                )
        for name in ("train_steps", "eval_batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(
                    f"train config: field {name!r} is {value!r}, expected an integer >= 1 or null"
                )

    def to_dict(self) -> dict:
        """JSON-serialisable dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def as_before(cls, name: str, value: Any) -> bool:
        """Whether ``name`` is one of :data:`LATER_FIELDS` holding its default.

        Such a value computes what a run written before the field computed.
        """
        return name in LATER_FIELDS and value == cls.__dataclass_fields__[name].default

    @classmethod
    def from_dict(cls, d: dict, source: str = "train config") -> TrainConfig:
        """Build from a dict, refusing unknown keys (named in the message)."""
        if not isinstance(d, dict):
            raise InputError(f"{source}: is a {type(d).__name__}, expected an object of fields")
        d = dict(d)
        if d.get("extra") == {}:  # an always-empty field older mgno wrote
            del d["extra"]
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(
                f"{source}: unknown field {unknown[0]!r}, "
                f"expected one of {', '.join(sorted(names))}"
            )
        try:
            return cls(**d)
        except InputError as err:
            if source in ("train config", "train options"):
                raise
            raise InputError(f"{source}: {err}") from None
