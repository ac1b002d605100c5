import numpy as np
import pytest
import torch

from stylecast.models.checkpoint import InputContract
from stylecast.models.color import rgb_to_ycbcr, ycbcr_to_rgb
from stylecast.realtime.processing import FrameProcessor, StyleOptions, preserve_color


def processor(margin: int = 0, **options) -> FrameProcessor:
    contract = InputContract(size_multiple=4, margin=margin)
    return FrameProcessor(contract, torch.device("cpu"), torch.float32, StyleOptions(**options))


def test_odd_sizes_are_padded_to_the_multiple_and_cropped_back(rng):
    frame = rng.integers(0, 256, (359, 641, 3), dtype=np.uint8)
    p = processor()
    original = p.upload([frame])
    x, crop = p.to_model(original)
    assert x.shape == (1, 3, 360, 644) and crop == (0, 0, 359, 641)
    # identity "model": the frame must come back bit-exact
    out = p.download(p.from_model(x, crop, original))[0]
    assert out.shape == frame.shape and (out == frame).all()


def test_max_size_processes_smaller_and_returns_full_size(rng):
    frame = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    p = processor(max_size=320)
    original = p.upload([frame])
    x, crop = p.to_model(original)
    assert x.shape[2:] == (180, 320) and crop == (0, 0, 180, 320)
    out = p.download(p.from_model(x, crop, original))[0]
    assert out.shape == frame.shape


def test_reduced_processing_gets_the_frames_fine_detail_back(rng):
    # A grey frame of 2 x 2 pixel blocks: all detail, gone at half size. Through an identity
    # "model" at half size, the detail upsampler restores it; bicubic alone cannot.
    blocks = rng.integers(0, 256, (90, 160), dtype=np.uint8).repeat(2, 0).repeat(2, 1)
    frame = np.repeat(blocks[:, :, None], 3, axis=2)
    errors = {}
    for upsample in ("detail", "bicubic"):
        p = processor(scale=0.5, upsample=upsample)
        original = p.upload([frame])
        x, crop = p.to_model(original)
        assert crop == (0, 0, 90, 160)
        out = p.download(p.from_model(x, crop, original))[0]
        errors[upsample] = np.abs(out.astype(int) - frame.astype(int)).mean()
    assert errors["detail"] < 1.0 and errors["bicubic"] > 30, errors


def test_margin_surrounds_the_frame_with_its_reflection_and_is_cropped_off(rng):
    frame = rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)
    p = processor(margin=6)
    original = p.upload([frame])
    x, crop = p.to_model(original)
    assert x.shape == (1, 3, 44, 56) and crop == (6, 6, 30, 41)  # 30 + 12 -> 44, 41 + 12 -> 56
    assert torch.equal(x[:, :, 6:36, 6:47], original)
    # reflection: the row above the picture mirrors its second row, the column left of it its second column
    assert torch.equal(x[:, :, 5, 6:47], original[:, :, 1]) and torch.equal(x[:, :, 6:36, 5], original[:, :, :, 1])
    out = p.download(p.from_model(x, crop, original))[0]
    assert (out == frame).all()


def test_strength_blends_and_zero_strength_returns_the_input(rng):
    frame = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for strength, expected in ((0.0, frame.astype(float)), (0.5, (frame.astype(float) + 255) / 2)):
        p = processor(strength=strength)
        original = p.upload([frame])
        x, crop = p.to_model(original)
        white = torch.ones_like(x)
        out = p.download(p.from_model(white, crop, original))[0]
        assert np.abs(out.astype(float) - expected).max() <= 1


def test_ycbcr_round_trip_and_preserve_color_keeps_chroma():
    rgb = torch.rand(2, 3, 8, 8)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-5)
    stylized = torch.rand(2, 3, 8, 8)
    kept = preserve_color(stylized, rgb)
    assert torch.allclose(rgb_to_ycbcr(kept)[:, 0], rgb_to_ycbcr(stylized)[:, 0], atol=1e-5)
    assert torch.allclose(rgb_to_ycbcr(kept)[:, 1:], rgb_to_ycbcr(rgb)[:, 1:], atol=1e-5)


def test_colorizer_output_keeps_the_frames_luminance_and_takes_the_networks_chroma(rng):
    frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    p = FrameProcessor(
        InputContract(size_multiple=4, transform="grayscale"), torch.device("cpu"), torch.float32, StyleOptions()
    )
    original = p.upload([frame])
    x, crop = p.to_model(original)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])  # the network sees gray
    sepia = torch.tensor([0.9, 0.7, 0.5]).view(1, 3, 1, 1) * x  # a "network" that tints its input
    out = p.from_model(sepia, crop, original).permute(0, 3, 1, 2).float() / 255
    y_out, y_frame, y_sepia = (rgb_to_ycbcr(t)[:, 0] for t in (out, original, sepia[:, :, :48, :64]))
    # (mean, not max: a strong tint on a near-white pixel leaves the gamut and is clipped)
    assert (y_out - y_frame).abs().mean() < 1 / 255 and (y_sepia - y_frame).abs().mean() > 0.05
    chroma_out, chroma_sepia = (rgb_to_ycbcr(t)[:, 1:] for t in (out, sepia[:, :, :48, :64]))
    assert (chroma_out - chroma_sepia).abs().mean() < 0.01


@pytest.mark.parametrize(
    ("size", "options", "expected"),
    [
        ((360, 640), {}, (360, 640)),
        ((360, 640), {"scale": 0.5}, (180, 320)),
        ((1080, 1920), {"max_size": 960, "scale": 0.75}, (540, 960)),
    ],
)
def test_processing_size(size, options, expected):
    assert StyleOptions(**options).processing_size(*size) == expected


def test_bgr_and_signed_range_contracts(rng):
    frame = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    p = FrameProcessor(
        InputContract(range=(-1.0, 1.0), channel_order="BGR", size_multiple=1, output_range=(-1.0, 1.0)),
        torch.device("cpu"),
        torch.float32,
        StyleOptions(),
    )
    original = p.upload([frame])
    x, crop = p.to_model(original)
    assert x.min() >= -1 and torch.allclose(x[0, 0], original[0, 2] * 2 - 1)  # B first, in [-1, 1]
    assert (p.download(p.from_model(x, crop, original))[0] == frame).all()


@pytest.mark.parametrize("model", ["starry_night", "eight_paintings"])
def test_a_flat_frame_is_answered_with_a_flat_colour_not_the_nets_near_black(model):
    """Nets with instance-norm epsilon 1e-5 turned an exactly flat frame into their biases'
    near-black (4-10 grey levels); the stylizer answers it with the colour the net paints under
    a faint texture: flat, far from black, the same every time. Other frames are untouched."""
    from stylecast.realtime.stylizer import Stylizer

    stylizer = Stylizer.create(model, "torch", "cpu")
    module = stylizer.checkpoint.build()

    def raw(x):  # the net alone, with the stylizer's own style input (the first style, for eight_paintings)
        return module(x, *stylizer.conditions.values())

    grey = np.full((96, 128, 3), 128, np.uint8)
    with torch.inference_mode():
        near_black = raw(torch.full((1, 3, 96, 128), 128 / 255)).clamp(0, 1).mul(255).amax()
    assert float(near_black) < 32  # what the net alone paints: near-black
    first, again = stylizer.one(grey), stylizer.one(grey)
    assert np.array_equal(first, again) and first.reshape(-1, 3).std(axis=0).max() < 1.0  # flat, steady
    assert first.reshape(-1, 3).mean(axis=0).max() > 60
    photo = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    with torch.inference_mode():
        expected = raw(torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255).clamp(0, 1)
    expected = expected[0].permute(1, 2, 0).mul(255).round().numpy()
    assert np.abs(stylizer.one(photo).astype(int) - expected).max() <= 1
