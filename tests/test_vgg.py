import json

import pytest
import torch

from models.vgg import LAYER_CHANNELS, VGGFeatures, VGGUnavailable, load_vgg, weights_from_file


def test_taps_have_the_documented_shapes():
    vgg = VGGFeatures(["relu1_2", "relu2_2", "relu3_3"])
    out = vgg(torch.rand(1, 3, 64, 64))
    assert out["relu1_2"].shape == (1, LAYER_CHANNELS["relu1_2"], 64, 64)
    assert out["relu2_2"].shape == (1, 128, 32, 32)
    assert out["relu3_3"].shape == (1, 256, 16, 16)
    assert len(vgg.features) == 16  # built only up to relu3_3


def test_unknown_layer_is_refused():
    with pytest.raises(ValueError, match="unknown VGG layer"):
        VGGFeatures(["relu9_9"])


def test_shared_weights_follow_their_json(vgg_weights):
    weights = weights_from_file(vgg_weights)
    assert weights.preprocessing.channel_order == "BGR" and weights.preprocessing.scale == 255.0
    assert weights.available[-1] == "relu3_4" and "relu4_1" not in weights.available
    vgg = weights.build(["relu1_1", "relu3_4"])
    # The Caffe weights expect BGR minus the mean: a mid-gray image is near zero after it,
    # so relu1_1 responds weakly; a saturated red image is far from it and responds strongly.
    gray = vgg(torch.full((1, 3, 32, 32), 0.47))["relu1_1"].mean()
    red = vgg(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 32, 32))["relu1_1"].mean()
    assert red > 2 * gray
    with pytest.raises(ValueError, match="stop at relu3_4"):
        weights.build(["relu4_1"])


def test_missing_files_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(VGGUnavailable, match="not found"):
        load_vgg(tmp_path / "nope.pth")
    torch.save({}, tmp_path / "w.pth")
    with pytest.raises(VGGUnavailable, match="preprocessing JSON"):
        load_vgg(tmp_path / "w.pth")
    (tmp_path / "w.json").write_text(
        json.dumps({"input": {"channel_order": "RGB", "range": "0..1"}, "layers": {"relu1_1": 1}})
    )
    assert load_vgg(tmp_path / "w.pth").available == ("relu1_1",)
