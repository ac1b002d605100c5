import json

import pytest
import torch

from stylecast.models.vgg import LAYER_CHANNELS, LAYERS, VGGFeatures, VGGUnavailable, load_vgg, weights_from_file


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
    with pytest.raises(VGGUnavailable, match="JSON card"):
        load_vgg(tmp_path / "w.pth")
    (tmp_path / "w.json").write_text(
        json.dumps({"input": {"channel_order": "RGB", "range": "0..1"}, "layers": {"relu1_1": 1}})
    )
    assert load_vgg(tmp_path / "w.pth").available == ("relu1_1",)


def test_layer_indices_are_torchvisions():
    assert LAYERS["vgg16"]["relu4_3"] == 22 and LAYERS["vgg16"]["relu5_3"] == 29 and "relu3_4" not in LAYERS["vgg16"]
    assert LAYERS["vgg19"]["relu4_1"] == 20 and LAYERS["vgg19"]["relu5_4"] == 35
    assert len(VGGFeatures(["relu4_3"], arch="vgg16").features) == 23


def test_full_depth_files_reach_their_deepest_layers(vgg16_weights, vgg19_full):
    vgg16 = load_vgg(vgg16_weights, "vgg16")
    assert vgg16.arch == "vgg16" and vgg16.available[-1] == "relu5_3"
    assert vgg16.preprocessing.channel_order == "RGB" and vgg16.preprocessing.std[0] == 0.229
    vgg19 = load_vgg(vgg19_full, "vgg19")
    assert vgg19.available[-1] == "relu5_4" and all(t.dtype == torch.float32 for t in vgg19.state_dict.values())
    image = torch.rand(1, 3, 64, 64)
    deep16 = vgg16.build(["relu4_3", "relu5_3"])(image)
    deep19 = vgg19.build(["relu4_1", "relu5_1"])(image)
    assert deep16["relu5_3"].shape == (1, 512, 4, 4) and deep19["relu5_1"].shape == (1, 512, 4, 4)
    # real ImageNet features: a photo-like input leaves some units of the deepest layer on
    assert deep16["relu5_3"].amax() > 0 and deep19["relu5_1"].amax() > 0


def test_a_file_of_the_other_architecture_is_refused(vgg16_weights, vgg_weights):
    with pytest.raises(VGGUnavailable, match="holds a vgg16, not the vgg19"):
        load_vgg(vgg16_weights, "vgg19")
    with pytest.raises(VGGUnavailable, match="holds a vgg19, not the vgg16"):
        load_vgg(vgg_weights, "vgg16")  # relu3_4 exists only in VGG19


def test_each_architecture_reads_its_own_variable(vgg16_weights, vgg19_full, monkeypatch):
    monkeypatch.setenv("STYLECAST_VGG16_WEIGHTS", str(vgg16_weights))
    monkeypatch.setenv("STYLECAST_VGG_WEIGHTS", str(vgg19_full))  # the older name still means VGG19
    monkeypatch.delenv("STYLECAST_VGG19_WEIGHTS", raising=False)
    assert load_vgg(arch="vgg16").source == str(vgg16_weights)
    assert load_vgg(arch="vgg19").source == str(vgg19_full)
    with pytest.raises(VGGUnavailable, match="unknown loss network"):
        load_vgg(arch="alexnet")
