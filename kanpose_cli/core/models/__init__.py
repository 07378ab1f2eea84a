"""Pose models: the registry plus one module per family.

Importing this package registers every family (explicit imports below; nothing else runs at import time).
"""

from kanpose_cli.core.models.registry import (
    ModelSpec,
    PoseModel,
    create_model,
    get_spec,
    list_models,
    register_model,
)

# Family modules register their variants on import. Keep this list explicit.
from kanpose_cli.core.models import amfacpose  # noqa: F401
from kanpose_cli.core.models import flatpose  # noqa: F401
from kanpose_cli.core.models import vitpose  # noqa: F401
from kanpose_cli.core.models import kanfpn  # noqa: F401

__all__ = ["ModelSpec", "PoseModel", "create_model", "get_spec", "list_models", "register_model"]
