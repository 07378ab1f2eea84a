"""Error hierarchy raised by the core and mapped to exit codes by the CLI (``kanpose_cli/cli/app.py``).

Every message is one line meant for the user; the CLI prints it without a traceback.

Exit codes: 1 run failed (``KanposeError``, ``InputError``), 2 usage (``UsageError``), 3 environment/resources
(``WeightsError``, ``DeviceError``, ``OutputError``).
"""


class KanposeError(Exception):
    """Base class; exit code 1."""

    exit_code = 1


class InputError(KanposeError):
    """An input (image, video, folder, annotation file) is missing, unreadable or malformed; exit code 1."""


class UsageError(KanposeError):
    """Options that contradict each other or an unknown model name; exit code 2."""

    exit_code = 2


class WeightsError(KanposeError):
    """Weights missing, corrupt, or belonging to another model; exit code 3."""

    exit_code = 3


class DeviceError(KanposeError):
    """Requested device or precision is not available (CUDA absent, fp16 on CPU); exit code 3."""

    exit_code = 3


class OutputError(KanposeError):
    """An output folder or file cannot be written (read-only, a file in the way, no permission); exit code 3.
    Checked before any work (:func:`kanpose_cli.core.io.check_writable`)."""

    exit_code = 3
