"""LPIPS against the reference implementation (the `lpips` package) with the shared weights."""

import numpy as np
import pytest
import torch

from stylecast.models.lpips import LPIPSUnavailable, load_lpips
from stylecast.training.data import to_tensor

# torchvision `features` index ranges of the reference's five slices
SLICES = {"vgg": [(0, 4), (4, 9), (9, 16), (16, 23), (23, 30)], "alex": [(0, 2), (2, 5), (5, 8), (8, 10), (10, 12)]}


@pytest.fixture(scope="module")
def weights_folder():
    from conftest import shared_path

    return shared_path("weights")


def reference(net: str, folder):
    """The `lpips` package's LPIPS, its backbone given the same torchvision weights."""
    lpips = pytest.importorskip("lpips")
    model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False).eval()
    backbone = {"vgg": "vgg16_imagenet_torchvision.pth", "alex": "alexnet_imagenet_torchvision.pth"}[net]
    state = {k: v.float() for k, v in torch.load(folder / backbone, weights_only=True).items()}
    renamed = {}
    for key, value in state.items():
        index = int(key.split(".")[1])
        part = next(i for i, (lo, hi) in enumerate(SLICES[net], 1) if lo <= index < hi)
        renamed[f"slice{part}.{key.removeprefix('features.')}"] = value
    model.net.load_state_dict(renamed)
    return model


@pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")  # the reference's torchvision call
@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_distances_match_the_reference_implementation(net, weights_folder, trainset):
    ours = load_lpips(net, weights_folder)
    theirs = reference(net, weights_folder)
    from stylecast.core.images import read_rgb

    photos = sorted(trainset.iterdir())[:4]
    a = torch.stack([to_tensor(read_rgb(p)[:96, :128]) for p in photos[:2]])
    b = torch.stack([to_tensor(read_rgb(p)[:96, :128]) for p in photos[2:]])
    noisy = (a + 0.1 * torch.randn(a.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    with torch.no_grad():
        for x, y in ((a, b), (a, noisy)):
            expected = theirs(x * 2 - 1, y * 2 - 1).flatten()
            np.testing.assert_allclose(ours(x, y).numpy(), expected.numpy(), rtol=1e-4)
        assert (ours(a, a) == 0).all()
        assert (ours(a, noisy) < ours(a, b)).all()  # a little noise is nearer than another photo


def test_a_folder_without_the_heads_says_so(tmp_path):
    with pytest.raises(LPIPSUnavailable, match="lacks lpips_v0.1_alex_lin.pth"):
        load_lpips("alex", tmp_path)
    with pytest.raises(LPIPSUnavailable, match="unknown LPIPS network"):
        load_lpips("squeeze", tmp_path)
