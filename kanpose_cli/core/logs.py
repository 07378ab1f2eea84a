"""Third-party log output, silenced once at CLI start-up so that kanpose's one-line errors stand alone.

Without this, a corrupt input prints the libraries' own lines before kanpose's error, e.g. OpenCV's
``[ERROR:0@2.9] global grfmt_png.cpp:296 readHeader ...`` or FFmpeg's ``[mov,mp4,m4a,3gp,3g2,mj2 @ 0x...] moov atom
not found`` (written by native code straight to stderr), ultralytics' ``WARNING ⚠️ ...`` lines (to stdout), or
Python deprecation warnings that one library raises about another.
kanpose reports every such failure itself. ``KANPOSE_DEBUG=1`` leaves all of them on; a variable the user set
(``OPENCV_LOG_LEVEL``, ``OPENCV_FFMPEG_LOGLEVEL``, ``YOLO_VERBOSE``) is kept.

This module imports no other kanpose module and neither OpenCV nor ultralytics.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

QUIET_ENV = {
    "OPENCV_LOG_LEVEL": "SILENT",  # OpenCV's own logger, read when cv2 is imported
    "OPENCV_FFMPEG_LOGLEVEL": "-8",  # AV_LOG_QUIET for FFmpeg inside OpenCV's videoio, read at the first capture
    "YOLO_VERBOSE": "false",  # ultralytics: no info lines, no progress bars
}


def silence_third_party_logs() -> None:
    """Switch off the native and Python logging of OpenCV (and its FFmpeg) and of ultralytics.

    Safe to call more than once and before or after those libraries are imported. Does nothing when
    ``KANPOSE_DEBUG`` is set.
    """
    if os.environ.get("KANPOSE_DEBUG"):
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    cv2 = sys.modules.get("cv2")  # already imported (tests, library use): the variable came too late
    if cv2 is not None and os.environ["OPENCV_LOG_LEVEL"] == QUIET_ENV["OPENCV_LOG_LEVEL"]:
        try:
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        except AttributeError:  # an OpenCV build without the utils.logging binding
            pass
    # ultralytics re-configures its logger's level and handlers when imported, but never re-enables it.
    logging.getLogger("ultralytics").disabled = True
    # Libraries' deprecation notices about each other (e.g. torch's ``torch.jit.interface`` FutureWarning, raised
    # when timm < 1.0.9 is imported) are for their developers, not for kanpose's users.
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)


NOTES_LOGGER = "kanpose.notes"


def note(message: str) -> None:
    """A one-line note for the user about something slow or one-time that is not an error (``exporting … to ONNX
    once``). Logged at INFO on the ``kanpose.notes`` logger: the CLI prints it as ``note: …`` on stderr
    (:mod:`kanpose_cli.cli.notes`); a program using the Python API sees it only if it configures logging."""
    logging.getLogger(NOTES_LOGGER).info(message)
