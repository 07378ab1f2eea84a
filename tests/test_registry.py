"""The one generic registry behind models, codecs, losses and weight converters: wildcard filters, close-match
usage errors (exit code 2) for unknown names."""

from __future__ import annotations

import pytest

from kanpose_cli.core.codecs import CODECS, build_codec
from kanpose_cli.core.errors import UsageError
from kanpose_cli.core.models import list_models
from kanpose_cli.core.models.losses import LOSSES, build_loss
from kanpose_cli.core.registry import Registry, name_matches
from kanpose_cli.core.weights.convert import CONVERTERS


def test_register_get_list_and_unregister():
    reg: Registry[int] = Registry("thing", hint="Run `x` for the list.")
    reg.register("alpha-1", 1)

    @reg.register("alpha-2")
    def two():
        return 2

    assert reg.get("alpha-1") == 1 and reg["alpha-2"] is two and "alpha-1" in reg and len(reg) == 2
    assert list(reg) == ["alpha-1", "alpha-2"] and reg.names("*-2") == ["alpha-2"] and reg.names("pha") == reg.names()
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("alpha-1", 3)
    with pytest.raises(UsageError, match=r"unknown thing 'alpha-3'\. Did you mean: alpha-"):
        reg.get("alpha-3")
    with pytest.raises(UsageError, match="Run `x` for the list"):
        reg.get("zzz")
    assert reg.unregister("alpha-1") == 1 and "alpha-1" not in reg


def test_name_filters():
    assert name_matches("vitpose-b", "vitpose-*") and not name_matches("kanfpn-s0", "vitpose-*")
    assert name_matches("amfacpose-r18-256x192", "r18") and name_matches("x", None)
    assert list_models(pattern="kanfpn-s[0-2]") == ["kanfpn-s0", "kanfpn-s1", "kanfpn-s2"]
    assert list_models("vitpose", pattern="*-simple") == ["vitpose-s-simple", "vitpose-b-simple"]


def test_unknown_codec_loss_converter_are_usage_errors():
    assert {"simcc", "heatmap", "regression", "decoded"} <= set(CODECS)
    assert {"kl_discret", "joints_mse", "l1"} <= set(LOSSES) and {"vitpose", "vitpose-hybrid"} <= set(CONVERTERS)
    with pytest.raises(UsageError, match="unknown codec 'heatmp'. Did you mean: heatmap") as err:
        build_codec({"type": "heatmp"}, (256, 192))
    assert err.value.exit_code == 2
    with pytest.raises(UsageError, match="unknown loss 'joints_mes'. Did you mean: joints_mse"):
        build_loss({"type": "joints_mes"})
    with pytest.raises(UsageError, match="need a 'type'"):
        build_loss({})
    with pytest.raises(UsageError, match="unknown weight converter"):
        CONVERTERS.get("vitpse")
