"""Video person tracks: stable track ids across frames (ultralytics' ByteTrack / BoT-SORT over kanpose's boxes,
:mod:`kanpose_cli.core.track.session`) and temporal keypoint smoothing per track (the One-Euro filter,
:mod:`kanpose_cli.core.track.one_euro`), and the boxes carried between detector frames of ``--det-every``
(:mod:`kanpose_cli.core.track.carry`).

Layer: below ``inference`` (the estimator drives it frame by frame), above ``detect`` (the ultralytics glue lives in
``detect/yolo.py``) and ``results``.
"""

from kanpose_cli.core.track.carry import BoxCarrier, shift_box
from kanpose_cli.core.track.one_euro import KeypointSmoother, OneEuroFilter
from kanpose_cli.core.track.session import TrackOptions, TrackSession

__all__ = ["BoxCarrier", "KeypointSmoother", "OneEuroFilter", "TrackOptions", "TrackSession", "shift_box"]
