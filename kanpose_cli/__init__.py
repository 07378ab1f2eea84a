"""kanpose: top-down human pose estimation (YOLO person boxes -> ViTPose/KAN-FPN-Stem, AMFACPose, FlatPose)."""

__version__ = "0.1.0"
