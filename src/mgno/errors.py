"""Exceptions shared by every layer of mgno.

Everything a user can get wrong (a file, a field, an option) raises
:class:`InputError`, a :class:`ValueError` whose message is one line that names
what was given and what was expected. The command-line interface turns it into
``mgno: error: <message>`` and exit status 2.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user: a file, a field of a file, or an option.

    The message is a single line naming the file or option, the field, what was
    found and what was expected.
    """


class OutputFault(OSError):
    """The machine could not store an output: disk full, file size limit, I/O error.

    Not the user's input: the command-line interface prints the one-line
    message and exits with status 1. The output is left as it was before the
    command (a resumable ``.partial`` file keeps what it had).
    """


class NotConverged(RuntimeError):
    """An iterative solve stopped at ``maxiter`` before its tolerance.

    The message is one line naming the option, the tolerance, the samples
    that missed it and the relative residual they reached. Nothing was
    written; the command-line interface prints it and exits with status 3.
    """
