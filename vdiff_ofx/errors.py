"""User-facing errors: one clear line for the editor, never a traceback."""

from __future__ import annotations


class VdiffError(Exception):
    """An error the user can act on; the CLI prints ``vdiff: <message>`` and exits with ``exit_code``."""

    exit_code = 1


class InputError(VdiffError):
    """The source clip cannot be used (missing, corrupt, truncated, no video, unknown codec, zero length)."""

    exit_code = 2


class OutputError(VdiffError):
    """The output cannot be written (unwritable folder, full disk, would overwrite the source or an existing file)."""

    exit_code = 3


class ModelError(VdiffError):
    """A model cannot be used (unknown name, missing file, checksum mismatch, bad input contract)."""

    exit_code = 4


class NothingToEnhance(VdiffError):
    """`--model auto` found nothing to fix (clean, noise below what a denoiser gains on); the source is untouched."""

    exit_code = 5


class Cancelled(VdiffError):
    """The job was cancelled by the user (Ctrl-C or API); partial output has been removed."""

    exit_code = 130
