"""Where the channels of an imported array are: channels-first, channels-last or none.

mgno stores fields channels-first, ``(N, C, *grid)``. Files from elsewhere
hold ``(N, *grid)`` without a channel axis or ``(N, *grid, C)`` channels
last as often. :func:`resolve_layouts` settles the layout of the arrays of
one data set together (inputs and outputs share their samples and grid):

* a word of :data:`mgno.vocab.LAYOUTS` other than ``auto`` is taken as given;
* ``auto`` lists the readings that fit each array alone (a channel axis holds
  at most :data:`MAX_CHANNELS` entries, a grid axis at least
  :data:`MIN_GRID` nodes), keeps the combinations that give every array the
  same grid, and takes the one left. When none is left, or more than one
  (``(N, 64, 64, 6)`` twice is six channels on 64x64 or one on 64x64x6), it
  refuses with one line that names the readings and the ``--layout`` to pass.

Nothing is guessed silently: what was taken is recorded in the converted
file (``source_layout``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mgno.errors import InputError
from mgno.vocab import LAYOUTS

AUTO, CHANNELS_FIRST, CHANNELS_LAST, NO_CHANNEL = LAYOUTS
#: ``auto``: the most entries an axis may have to be read as channels.
MAX_CHANNELS = 8
#: ``auto``: the fewest nodes an axis may have to be read as part of the grid.
MIN_GRID = 5
_CHOICES = ", ".join(LAYOUTS[1:])


@dataclass(frozen=True)
class Reading:
    """One way to read an array: its layout, grid and number of channels."""

    layout: str
    grid: tuple[int, ...]
    channels: int


def parse_layout(value: str | Sequence[str] | None, n_arrays: int = 2) -> tuple[str, ...]:
    """``--layout`` as one word per array: ``"auto"``, ``"channels-last"`` or ``"IN,OUT"``.

    Raises
    ------
    InputError
        An unknown word, or more words than arrays.
    """
    if value is None:
        words: list[str] = [AUTO]
    elif isinstance(value, str):
        words = [w.strip().lower() for w in value.split(",")]
    else:
        words = [str(w).strip().lower() for w in value]
    if not 1 <= len(words) <= n_arrays:
        raise InputError(f"--layout: found {len(words)} words in {value!r}, expected one "
                         f"(for every array) or IN,OUT; each one of {', '.join(LAYOUTS)}")
    checked = [LAYOUTS.check(w, "--layout") for w in words]
    return tuple(checked * n_arrays if len(checked) == 1 else checked)


def readings(shape: Sequence[int], lead: int = 1) -> list[Reading]:
    """The readings ``auto`` considers for an array whose first ``lead`` axes are not fields."""
    per = tuple(int(n) for n in shape[lead:])
    out = []
    if per and all(n >= MIN_GRID for n in per):
        out.append(Reading(NO_CHANNEL, per, 1))
    if len(per) >= 2 and per[0] <= MAX_CHANNELS and all(n >= MIN_GRID for n in per[1:]):
        out.append(Reading(CHANNELS_FIRST, per[1:], per[0]))
    if len(per) >= 2 and per[-1] <= MAX_CHANNELS and all(n >= MIN_GRID for n in per[:-1]):
        out.append(Reading(CHANNELS_LAST, per[:-1], per[-1]))
    return out


def forced_reading(shape: Sequence[int], layout: str, lead: int, where: str) -> Reading:
    """The reading ``layout`` gives an array (no plausibility check but axes to spare)."""
    per = tuple(int(n) for n in shape[lead:])
    if layout == NO_CHANNEL and per:
        return Reading(NO_CHANNEL, per, 1)
    if len(per) >= 2:
        if layout == CHANNELS_FIRST:
            return Reading(CHANNELS_FIRST, per[1:], per[0])
        return Reading(CHANNELS_LAST, per[:-1], per[-1])
    raise InputError(f"{where} {tuple(shape)}: too few axes to read as {layout}, expected "
                     f"a grid axis{' and a channel axis' if per else ''} after the samples")


def _grid(g: tuple[int, ...]) -> str:
    return "x".join(map(str, g))


def _describe(combo: Mapping[str, Reading]) -> str:
    layouts = {r.layout for r in combo.values()}
    grid = _grid(next(iter(combo.values())).grid)
    if len(layouts) == 1:
        return f"{next(iter(layouts))} (grid {grid})"
    return ", ".join(f"{k!r} {r.layout}" for k, r in combo.items()) + f" (grid {grid})"


def _flag(combo: Mapping[str, Reading]) -> str:
    layouts = [r.layout for r in combo.values()]
    return "--layout " + (layouts[0] if len(set(layouts)) == 1 else ",".join(layouts))


def resolve_layouts(
    path: object, shapes: Mapping[str, Sequence[int]], layouts: Sequence[str], lead: int = 1
) -> dict[str, Reading]:
    """The reading of every array, one grid for all of them (see the module's text).

    Parameters
    ----------
    path:
        The source file, named in messages.
    shapes:
        Source name -> shape of each array, in order (inputs, outputs).
    layouts:
        One word of :data:`mgno.vocab.LAYOUTS` per array.
    lead:
        Axes before the fields: 1 (samples), 2 for trajectories (samples, times).

    Raises
    ------
    InputError
        No reading gives every array the same grid, or several do.
    """
    options = {}
    for (name, shape), layout in zip(shapes.items(), layouts, strict=True):
        options[name] = (readings(shape, lead) if layout == AUTO
                         else [forced_reading(shape, layout, lead, f"{path}: {name!r}")])
    combos = [dict(zip(options, c, strict=True)) for c in itertools.product(*options.values())
              if len({r.grid for r in c}) == 1]
    if len(combos) == 1:
        return combos[0]
    found = " and ".join(f"{k!r} {tuple(s)}" for k, s in shapes.items())
    if combos:
        raise InputError(
            f"{path}: {found} can be read as " + " or as ".join(_describe(c) for c in combos)
            + "; pass " + " or ".join(_flag(c) for c in combos) + " to say which")
    alone = "; ".join(
        f"{k!r} as " + (" or ".join(f"{r.layout} (grid {_grid(r.grid)})" for r in rs)
                        if rs else f"no layout (channels <= {MAX_CHANNELS}, grid axes >= "
                        f"{MIN_GRID} nodes)")
        for k, rs in options.items())
    raise InputError(
        f"{path}: {found} fit no layout with one grid for all (read alone: {alone}); expected "
        f"the same grid in each, or pass --layout IN,OUT with IN, OUT in {_CHOICES}")


def to_channels_first(array: np.ndarray, reading: Reading, lead: int = 1) -> np.ndarray:
    """``array`` with its channels on axis ``lead`` (a new axis when it has none)."""
    if reading.layout == NO_CHANNEL:
        return np.expand_dims(array, lead)
    if reading.layout == CHANNELS_LAST:
        return np.moveaxis(array, -1, lead)
    return array


__all__ = [
    "MAX_CHANNELS",
    "MIN_GRID",
    "Reading",
    "forced_reading",
    "parse_layout",
    "readings",
    "resolve_layouts",
    "to_channels_first",
]
