"""The built-in comparisons of ``mgno bench``: tasks, their data and recipes.

A profile is a list of :class:`Task`; each task names how its data are
generated (:class:`DataSpec`), the preset whose recipe is the starting point,
the :class:`mgno.train.TrainConfig` fields every model gets and per-family
network options. Nothing here runs anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mgno.errors import InputError

#: Models of the profiles unless ``models`` says otherwise.
DEFAULT_MODELS = ("mgno", "fno", "tfno", "unet")


@dataclass(frozen=True)
class DataSpec:
    """How a task's data are generated (see :func:`mgno.data.generate.generate_dataset`).

    Attributes
    ----------
    pde:
        Generator name.
    resolution:
        Stored nodes per axis.
    params:
        PDE parameters (``solve_resolution`` included where the solve is finer).
    n_train, n_val, n_test:
        Samples (trajectories) per split.
    seed:
        Seed of the training split; validation and test use ``seed + 1`` and ``seed + 2``.
    """

    pde: str
    resolution: int
    params: dict[str, Any]
    n_train: int
    n_val: int
    n_test: int
    seed: int

    def split_sizes(self) -> tuple[int, int, int]:
        """Samples of the train, validation and test splits."""
        return self.n_train, self.n_val, self.n_test

    def generator(self, split: int) -> dict[str, Any]:
        """What ``mgno generate`` is given for split 0 (train), 1 (val) or 2 (test)."""
        return {"pde": self.pde, "n": self.split_sizes()[split], "resolution": self.resolution,
                "seed": self.seed + split, "params": dict(self.params)}


@dataclass(frozen=True)
class Task:
    """One comparison: a data set, a recipe and per-family network options.

    Attributes
    ----------
    name:
        Short name (used in paths).
    title:
        One line for the tables.
    data:
        How to generate the data, or None when ``paths`` are given.
    preset:
        Preset whose recipe (and, for MgNO, network) is the starting point.
    train:
        :class:`mgno.train.TrainConfig` fields given to every model.
    models:
        Network options per family (``mgno.train.train``'s ``model_overrides``).
    paths:
        ``(train, val, test)`` files of a free-form task.
    """

    name: str
    title: str
    data: DataSpec | None
    preset: str | None
    train: dict[str, Any]
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    paths: tuple[str, str | None, str] | None = None


def _cpu_profile(quick: bool) -> list[Task]:
    """Darcy smooth, Navier-Stokes NS2 (and 10 -> 10, full profile) and mixed-BC elliptic."""
    res = 32 if quick else 64
    n_darcy = (200, 50, 50) if quick else (1000, 100, 100)
    n_ns = (20, 5, 10) if quick else (100, 10, 20)
    n_mixed = (200, 50, 50) if quick else (500, 100, 100)
    epochs = 10 if quick else 12
    recipe = {"epochs": epochs, "lr": 1e-3, "scheduler_step": "step", "seed": 0}
    # The presets' Fourier H1 loss drops |k_i| >= 20, a cut chosen at 211x211. At
    # 64x64 it hides the top third of the spectrum, where a 12-epoch MgNO keeps
    # most of its error (benchmarks/RESULTS.md): every model here sees all modes.
    darcy_recipe = {**recipe, "batch_size": 8, "k_max": "all"}
    unet = {"unet": {"channels": 16}}
    tasks = [
        Task(
            "darcy", f"Darcy smooth {res}x{res} (solved on {2 * res - 1}x{2 * res - 1})",
            DataSpec("darcy-smooth", res, {"solve_resolution": 2 * res - 1}, *n_darcy, seed=100),
            "darcy-smooth", darcy_recipe, unet,
        ),
        Task(
            "ns", f"Navier-Stokes nu=1e-5 {res}x{res}, NS2 (one step, 10-step rollout)",
            DataSpec("navier-stokes", res,
                     {"nu": 1e-5, "T": 11.0, "solve_resolution": 128 if quick else 256},
                     *n_ns, seed=200),
            "navier-stokes", {**recipe, "batch_size": 10}, unet,
        ),
        Task(
            "mixed", f"Elliptic -div(a grad u) = f {res}x{res}, Dirichlet in x, Neumann in y",
            DataSpec("elliptic", res, {"bc": "dirichlet,neumann"}, *n_mixed, seed=300),
            None, {**recipe, "batch_size": 8, "loss": "rel_l2"}, unet,
        ),
    ]
    if not quick:  # after ns: the paper's other NS protocol, beside NS2
        tasks.insert(2, _ns10_task(res, n_ns, {**recipe, "batch_size": 10}, unet))
    return tasks


def _ns10_task(res: int, counts: tuple[int, int, int], recipe: dict[str, Any],
               models: dict[str, dict[str, Any]]) -> Task:
    """Navier-Stokes nu=1e-5, the paper's 10 -> 10 protocol: frames 1..10 in, 11..20 out.

    The window of 10 frames enters as channels and the next frame comes out,
    rolled out 10 times (the FNO-2D protocol); the error is the rel. L2 over
    the 10 predicted frames. ``T = 20`` stores frames ``t = 0..20``; the
    navier-stokes preset's ``start_frame`` 1 leaves out the initial field.
    """
    return Task(
        "ns10", f"Navier-Stokes nu=1e-5 {res}x{res}, 10 -> 10 frames (t = 1..10 -> 11..20)",
        DataSpec("navier-stokes", res, {"nu": 1e-5, "T": 20.0, "solve_resolution": 256},
                 *counts, seed=210),
        "navier-stokes",
        {**recipe, "protocol": "10-10", "steps_in": 10, "steps_out": 10, "start_frame": 1},
        models,
    )


def _gpu_profile() -> list[Task]:
    """The paper's data sizes and recipes (500 epochs): Darcy smooth/rough, NS2."""
    return [
        Task(
            "darcy-smooth", "Darcy smooth 211x211 (solved on 421x421), paper recipe",
            DataSpec("darcy-smooth", 211, {"solve_resolution": 421}, 1000, 100, 100, seed=100),
            "darcy-smooth", {"seed": 0},
        ),
        Task(
            "darcy-rough", "Darcy rough 256x256 (solved on 511x511), paper recipe",
            DataSpec("darcy-rough", 256, {"solve_resolution": 511}, 1280, 112, 112, seed=400),
            "darcy-rough", {"seed": 0},
        ),
        Task(
            "ns", "Navier-Stokes nu=1e-5 64x64, NS2, paper recipe",
            DataSpec("navier-stokes", 64, {"nu": 1e-5, "T": 11.0, "solve_resolution": 256},
                     1000, 100, 100, seed=200),
            "navier-stokes", {"seed": 0},
        ),
    ]


_PROFILES = {
    "cpu": (lambda: _cpu_profile(False),
            "Darcy smooth 64x64 1000/100/100, NS nu=1e-5 64x64 NS2 and 10 -> 10 100/10/20 "
            "trajectories each, mixed-BC elliptic 500/100/100; 12 epochs; about 2 h on 2 "
            "cores with --jobs 2 --threads 1 without ns10 (estimated from the runs of each "
            "task; ns10 not yet timed)"),
    "cpu-quick": (lambda: _cpu_profile(True),
                  "the cpu profile at 32x32 with 200/50/50 samples (NS 20/5/10), 10 epochs; "
                  "8.5 min on 2 idle cores with --jobs 2 --threads 1"),
    "gpu": (_gpu_profile,
            "the paper's settings: Darcy smooth 211x211, rough 256x256, NS2 64x64, "
            "500 epochs; run in slices with time_limit and resume"),
}


def list_profiles() -> dict[str, str]:
    """Names of the built-in profiles with one line each."""
    return {name: line for name, (_make, line) in _PROFILES.items()}


def get_profile(name: str) -> list[Task]:
    """The tasks of profile ``name`` (``cpu``, ``cpu-quick`` or ``gpu``).

    Raises
    ------
    InputError
        On an unknown name.
    """
    if name not in _PROFILES:
        raise InputError(
            f"--profile: found {name!r}, expected one of {', '.join(list_profiles())}")
    return _PROFILES[name][0]()


def model_families() -> tuple[str, ...]:
    """Families ``mgno bench`` can train: those of :data:`mgno.nn.MODEL_FAMILIES`."""
    from mgno.nn import MODEL_FAMILIES

    return tuple(MODEL_FAMILIES)


def check_models(models: list[str] | tuple[str, ...] | None) -> list[str]:
    """The families to train, in order, without repeats (default :data:`DEFAULT_MODELS`).

    Raises
    ------
    InputError
        On a family that :func:`model_families` does not know.
    """
    chosen = list(models) if models else list(DEFAULT_MODELS)
    known = model_families()
    for m in chosen:
        if m not in known:
            raise InputError(f"--models: found {m!r}, expected some of {', '.join(known)}")
    return list(dict.fromkeys(chosen))


def select_tasks(all_tasks: list[Task], names: list[str] | tuple[str, ...] | None) -> list[Task]:
    """The tasks named in ``names`` (all when None), in the profile's order.

    Raises
    ------
    InputError
        On a name the profile does not have.
    """
    if not names:
        return list(all_tasks)
    known = [t.name for t in all_tasks]
    bad = [t for t in names if t not in known]
    if bad:
        raise InputError(f"--tasks: found {bad[0]!r}, expected some of {', '.join(known)}")
    return [t for t in all_tasks if t.name in names]
