"""The built-in comparisons of ``mgno bench``: tasks, their data and recipes.

A profile is a list of :class:`Task`; each task names how its data are
generated (:class:`DataSpec`), the preset whose recipe is the starting point,
the :class:`mgno.train.TrainConfig` fields every model gets, per-family
network options and the figures the paper reports for it. Nothing here runs
anything.

Profiles: ``cpu-quick``, ``cpu`` and ``gpu`` (the first comparisons), and
``paper``, ``paper-cpu``, ``paper-cpu-quick``: the seven experiments of the
MgNO paper's table (Darcy smooth, rough, multiscale; Navier-Stokes NS2 and
10 -> 10; Helmholtz; pipe), each MgNO beside FNO and the U-Net, at the
paper's sizes (GPU) or scaled to a 2-core machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mgno.errors import InputError

#: Models of the profiles unless ``models`` (or the profile) says otherwise.
DEFAULT_MODELS = ("mgno", "fno", "tfno", "unet")
#: Models of the paper profiles: each MgNO beside FNO and the U-Net.
PAPER_MODELS = ("mgno", "fno", "unet")
#: What the paper's table gives for NS 10 -> 10, which no preset holds (the
#: navier-stokes preset is NS2): MgNO 10.82e-2; FNO-2D 0.1556 in the FNO paper,
#: the same protocol (nu = 1e-5, 64x64, frames 1..10 -> 11..20).
PAPER_NS10 = {"mgno": {"rel_l2": 10.82e-2}, "fno": {"rel_l2": 0.1556}}


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
    paper:
        The paper's test errors for this experiment per family
        (``{"mgno": {"rel_l2": ..., "rel_h1": ...}}``), at the paper's sizes,
        printed beside ours; they do not enter a run's spec.
    family_train:
        TrainConfig fields for one family only, over ``train`` (the cpu
        profile's MgNO trains coarse-to-fine on Darcy; FNO cannot).
    """

    name: str
    title: str
    data: DataSpec | None
    preset: str | None
    train: dict[str, Any]
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    paths: tuple[str, str | None, str] | None = None
    paper: dict[str, dict[str, float]] = field(default_factory=dict)
    family_train: dict[str, dict[str, Any]] = field(default_factory=dict)


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
    # MgNO on 64x64 Darcy trains coarse-to-fine over two coarse grids (4+4+4 epochs):
    # 0.0127 against 0.0157 without, in 0.21x FNO's time to FNO's error (3 seeds,
    # benchmarks/RESULTS.md, issue 18); not measured at 32x32 (cpu-quick)
    c2f = {} if quick else {"mgno": {"grid_schedule": "coarse-to-fine", "coarse_levels": 2}}
    tasks = [
        Task(
            "darcy", f"Darcy smooth {res}x{res} (solved on {2 * res - 1}x{2 * res - 1})",
            DataSpec("darcy-smooth", res, {"solve_resolution": 2 * res - 1}, *n_darcy, seed=100),
            "darcy-smooth", darcy_recipe, unet, family_train=c2f,
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
    if not quick:  # after ns: the paper's other NS protocol, the paper-cpu profile's task
        tasks.insert(2, _paper_flows(PAPER_CPU, unet)[1])
    return tasks


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


def paper_figures(preset: str) -> dict[str, dict[str, float]]:
    """MgNO's test errors in the paper for a preset's experiment (from the preset)."""
    from mgno.presets import lookup_preset

    reported = lookup_preset(preset).paper
    return {"mgno": {k: float(reported[k]) for k in ("rel_l2", "rel_h1") if k in reported}}


@dataclass(frozen=True)
class PaperSizes:
    """How big a paper profile's tasks are, and their recipes.

    Attributes
    ----------
    smooth, smooth_solve:
        Stored and solve grid of Darcy smooth.
    rough, rough_solve, multiscale_solve:
        Stored grid of Darcy rough and multiscale, their solve grids.
    darcy_n, rough_n:
        Samples of the train, validation and test splits (smooth and
        multiscale; rough).
    ns, ns_solve, ns_n, ns10_n:
        Navier-Stokes stored and spectral grid, trajectories of NS2 and 10 -> 10.
    helmholtz, helmholtz_n, pipe, pipe_n:
        Grids and samples of Helmholtz and the pipe.
    recipe:
        TrainConfig fields of every task (GPU: just the seed; the presets'
        recipes do the rest).
    darcy_recipe, ns_recipe, steady_recipe:
        Further fields of the Darcy tasks, the NS tasks, Helmholtz and the pipe.
    unet:
        Network options of the U-Net (the CPU profiles' narrower one).
    """

    smooth: int
    smooth_solve: int
    rough: int
    rough_solve: int
    multiscale_solve: int
    darcy_n: tuple[int, int, int]
    rough_n: tuple[int, int, int]
    ns: int
    ns_solve: int
    ns_n: tuple[int, int, int]
    ns10_n: tuple[int, int, int]
    helmholtz: int
    helmholtz_n: tuple[int, int, int]
    pipe: int
    pipe_n: tuple[int, int, int]
    recipe: dict[str, Any]
    darcy_recipe: dict[str, Any] = field(default_factory=dict)
    ns_recipe: dict[str, Any] = field(default_factory=dict)
    steady_recipe: dict[str, Any] = field(default_factory=dict)
    unet: dict[str, Any] = field(default_factory=dict)


def _paper_darcy(z: PaperSizes, models: dict[str, dict[str, Any]]) -> list[Task]:
    """Darcy smooth, rough and multiscale at the sizes ``z``."""
    recipe = {**z.recipe, **z.darcy_recipe}
    s, ss, r, rs, ms = z.smooth, z.smooth_solve, z.rough, z.rough_solve, z.multiscale_solve
    return [
        Task("darcy-smooth", f"Darcy smooth {s}x{s} (solved on {ss}x{ss})",
             DataSpec("darcy-smooth", s, {"solve_resolution": ss}, *z.darcy_n, seed=100),
             "darcy-smooth", recipe, models, paper=paper_figures("darcy-smooth")),
        Task("darcy-rough", f"Darcy rough {r}x{r} (solved on {rs}x{rs})",
             DataSpec("darcy-rough", r, {"solve_resolution": rs}, *z.rough_n, seed=400),
             "darcy-rough", recipe, models, paper=paper_figures("darcy-rough")),
        Task("darcy-multiscale",
             f"Darcy multiscale {r}x{r} (solved on {ms}x{ms}, every {(ms - 1) // (r - 1)}th node)",
             DataSpec("darcy-multiscale", r, {"solve_resolution": ms}, *z.darcy_n, seed=500),
             "darcy-multiscale", recipe, models, paper=paper_figures("darcy-multiscale")),
    ]


def _paper_flows(z: PaperSizes, models: dict[str, dict[str, Any]]) -> list[Task]:
    """Navier-Stokes NS2 and 10 -> 10 at the sizes ``z``."""
    recipe = {**z.recipe, **z.ns_recipe}
    r, solve = z.ns, z.ns_solve
    return [
        Task("ns", f"Navier-Stokes nu=1e-5 {r}x{r}, NS2 (one step, 10-step rollout from "
             f"frame 1), solved on {solve}x{solve}",
             DataSpec("navier-stokes", r, {"nu": 1e-5, "T": 11.0, "solve_resolution": solve},
                      *z.ns_n, seed=200),
             "navier-stokes", recipe, models, paper=paper_figures("navier-stokes")),
        Task("ns10", f"Navier-Stokes nu=1e-5 {r}x{r}, 10 -> 10 frames (t = 1..10 -> 11..20), "
             f"solved on {solve}x{solve}",
             DataSpec("navier-stokes", r, {"nu": 1e-5, "T": 20.0, "solve_resolution": solve},
                      *z.ns10_n, seed=210),
             "navier-stokes",
             {**recipe, "protocol": "10-10", "steps_in": 10, "steps_out": 10, "start_frame": 1},
             models, paper=PAPER_NS10),
    ]


def _paper_profile(z: PaperSizes) -> list[Task]:
    """The seven experiments of the paper's table at the sizes ``z``."""
    models = {"unet": dict(z.unet)} if z.unet else {}
    steady = {**z.recipe, **z.steady_recipe}
    h, p = z.helmholtz, z.pipe
    return [
        *_paper_darcy(z, models),
        *_paper_flows(z, models),
        Task("helmholtz", f"Helmholtz omega=1000 {h}x{h}, wave speed -> field, Neumann",
             DataSpec("helmholtz", h, {}, *z.helmholtz_n, seed=600),
             "helmholtz", steady, models, paper=paper_figures("helmholtz")),
        Task("pipe", f"Pipe flow (Geo-FNO) {p}x{p}: mesh coordinates -> velocity",
             DataSpec("pipe", p, {}, *z.pipe_n, seed=700),
             "pipe", steady, models, paper=paper_figures("pipe")),
    ]


#: The paper's sizes (GPU): Darcy smooth 211 from 421, rough 256 from 511 and
#: multiscale 256 from 1021 (every 4th node, as the authors' 1023 -> 256), NS 64 from
#: 256, Helmholtz 101, pipe 129; the paper's splits, the presets' recipes.
PAPER_GPU = PaperSizes(
    smooth=211, smooth_solve=421, rough=256, rough_solve=511, multiscale_solve=1021,
    darcy_n=(1000, 100, 100), rough_n=(1280, 112, 112), ns=64, ns_solve=256,
    ns_n=(1000, 100, 100), ns10_n=(1000, 100, 200), helmholtz=101,
    helmholtz_n=(4000, 200, 200), pipe=129, pipe_n=(1000, 200, 200), recipe={"seed": 0},
)
_CPU_RECIPES = dict(darcy_recipe={"batch_size": 8, "k_max": "all"},
                    ns_recipe={"batch_size": 10}, steady_recipe={"batch_size": 8},
                    unet={"channels": 16})
#: Scaled to 2 CPU cores, about 2.5 h with --jobs 2 --threads 1 (estimated, see
#: docs/benchmarks.md): Darcy and NS 64x64, Helmholtz at its 101x101, pipe 65x65.
PAPER_CPU = PaperSizes(
    smooth=64, smooth_solve=127, rough=64, rough_solve=127, multiscale_solve=253,
    darcy_n=(1000, 100, 100), rough_n=(1000, 100, 100), ns=64, ns_solve=128,
    ns_n=(100, 10, 20), ns10_n=(100, 10, 20), helmholtz=101, helmholtz_n=(300, 50, 50),
    pipe=65, pipe_n=(500, 100, 100),
    recipe={"epochs": 12, "lr": 1e-3, "scheduler_step": "step", "seed": 0}, **_CPU_RECIPES,
)
#: The same at 32x32 (Helmholtz 51x51, pipe 33x33), 6 epochs: under 20 minutes.
PAPER_CPU_QUICK = PaperSizes(
    smooth=32, smooth_solve=63, rough=32, rough_solve=63, multiscale_solve=125,
    darcy_n=(200, 50, 50), rough_n=(200, 50, 50), ns=32, ns_solve=128, ns_n=(20, 5, 10),
    ns10_n=(20, 5, 10), helmholtz=51, helmholtz_n=(100, 20, 20), pipe=33,
    pipe_n=(200, 50, 50),
    recipe={"epochs": 6, "lr": 1e-3, "scheduler_step": "step", "seed": 0}, **_CPU_RECIPES,
)


@dataclass(frozen=True)
class _Profile:
    make: Callable[[], list[Task]]
    line: str
    models: tuple[str, ...] = DEFAULT_MODELS


_PROFILES = {
    "cpu": _Profile(
        lambda: _cpu_profile(False),
        "Darcy smooth 64x64 1000/100/100, NS nu=1e-5 64x64 NS2 and 10 -> 10 100/10/20 "
        "trajectories each, mixed-BC elliptic 500/100/100; 12 epochs; about 2 h on 2 "
        "cores with --jobs 2 --threads 1, plus about 40 min of one core for ns10 (measured "
        "task by task)"),
    "cpu-quick": _Profile(
        lambda: _cpu_profile(True),
        "the cpu profile at 32x32 with 200/50/50 samples (NS 20/5/10), 10 epochs; "
        "8.5 min on 2 idle cores with --jobs 2 --threads 1"),
    "gpu": _Profile(
        _gpu_profile,
        "the paper's settings: Darcy smooth 211x211, rough 256x256, NS2 64x64, "
        "500 epochs; run in slices with time_limit and resume"),
    "paper": _Profile(
        lambda: _paper_profile(PAPER_GPU),
        "the paper's table, each MgNO beside FNO and the U-Net: Darcy smooth 211, rough and "
        "multiscale 256, NS2 and NS 10 -> 10 64x64, Helmholtz 101, pipe 129; the paper's "
        "splits and recipes (500 epochs, Helmholtz 100); GPU, in slices with time_limit and "
        "resume", PAPER_MODELS),
    "paper-cpu": _Profile(
        lambda: _paper_profile(PAPER_CPU),
        "the paper profile's seven tasks on 2 cores: Darcy and NS 64x64 (1000 samples, 100 "
        "trajectories), Helmholtz 101x101 300 samples, pipe 65x65 500 samples; 12 epochs; "
        "about 2.5 h with --jobs 2 --threads 1 (estimated from the cpu profile's timings)",
        PAPER_MODELS),
    "paper-cpu-quick": _Profile(
        lambda: _paper_profile(PAPER_CPU_QUICK),
        "the seven tasks at 32x32 (Helmholtz 51x51), 200 samples (NS 20 trajectories), "
        "6 epochs; 18 min with --jobs 1 --threads 1 on a loaded machine (measured)",
        PAPER_MODELS),
}


def list_profiles() -> dict[str, str]:
    """Names of the built-in profiles with one line each."""
    return {name: p.line for name, p in _PROFILES.items()}


def _lookup(name: str) -> _Profile:
    if name not in _PROFILES:
        raise InputError(
            f"--profile: found {name!r}, expected one of {', '.join(list_profiles())}")
    return _PROFILES[name]


def get_profile(name: str) -> list[Task]:
    """The tasks of profile ``name`` (one of :func:`list_profiles`).

    Raises
    ------
    InputError
        On an unknown name.
    """
    return _lookup(name).make()


def profile_models(name: str) -> tuple[str, ...]:
    """The families profile ``name`` trains unless ``--models`` says otherwise.

    Raises
    ------
    InputError
        On an unknown name.
    """
    return _lookup(name).models


def model_families() -> tuple[str, ...]:
    """Families ``mgno bench`` can train: those of :data:`mgno.nn.MODEL_FAMILIES`."""
    from mgno.nn import MODEL_FAMILIES

    return tuple(MODEL_FAMILIES)


def check_models(models: list[str] | tuple[str, ...] | None,
                 default: tuple[str, ...] = DEFAULT_MODELS) -> list[str]:
    """The families to train, in order, without repeats (``default`` when None).

    Raises
    ------
    InputError
        On a family that :func:`model_families` does not know.
    """
    chosen = list(models) if models else list(default)
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
