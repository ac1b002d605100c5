"""Real training steps on the shared photos and VGG weights (skipped when those are absent)."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import train_on_two_ranks

from stylecast.core.errors import InputError
from stylecast.core.images import write_rgb
from stylecast.models.checkpoint import load_checkpoint
from stylecast.training.data import RandomCrops
from stylecast.training.fast import FastConfig, train
from stylecast.training.losses import (
    ContentLoss,
    FlatSceneLoss,
    StyleLoss,
    TemporalLoss,
    affine_grid,
    codec_noise,
    gram_matrix,
    random_affine,
    smooth_flow,
    total_variation,
    video_noise,
    warp,
    white_noise,
)


def tiny_config(tmp_path, trainset, vgg_weights, **overrides) -> FastConfig:
    values = dict(
        style=str(trainset.parent / "media" / "styles" / "starry_night.jpg"),
        data=str(trainset),
        out=str(tmp_path / "model.pt"),
        net="small_plain",
        steps=16,
        batch_size=2,
        scale_size=96,
        crop_size=64,
        style_size=128,
        lr=5e-3,
        # the shared relu3_4 file is the Caffe VGG19, with the weights of its 0..255 scale
        loss_network="vgg19",
        vgg_weights=str(vgg_weights),
        content_weight=1.0,
        style_weight=20.0,
        tv_weight=1e5,
        checkpoint_every=8,
        device="cpu",
    )
    values.update(overrides)
    return FastConfig(**values)


def test_a_few_steps_on_real_photos_lower_the_loss(tmp_path, trainset, vgg_weights):
    result = train(tiny_config(tmp_path, trainset, vgg_weights), progress=False)
    totals = [sum(step.values()) for step in result.history]
    assert len(totals) == 16
    assert np.mean(totals[-4:]) < 0.7 * np.mean(totals[:4])
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.styles == ["starry_night"] and ckpt.architecture == "johnson_small"
    assert ckpt.training["style_layers_used"] == ["relu1_2", "relu2_2", "relu3_3"]  # relu4_3 is not in the file
    assert all(t.dtype == torch.float16 for t in ckpt.state_dict.values() if t.is_floating_point())
    run_dir = tmp_path / "model.run"
    assert json.loads((run_dir / "config.json").read_text())["steps"] == 16
    assert list(run_dir.glob("events.out.tfevents.*"))  # TensorBoard


def test_johnsons_defaults_train_on_vgg16_to_relu4_3(tmp_path, trainset, vgg16_weights, caplog):
    """No loss flags: Johnson et al.'s network and layers, at pytorch/examples' weights."""
    import logging

    config = FastConfig(
        style=str(trainset.parent / "media" / "styles" / "starry_night.jpg"),
        data=str(trainset),
        out=str(tmp_path / "model.pt"),
        net="small_plain", steps=16, batch_size=2, scale_size=96, crop_size=64, style_size=128, lr=5e-3,
        vgg_weights=str(vgg16_weights), checkpoint_every=16, device="cpu",
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="stylecast.train"):
        result = train(config, progress=False)
    assert "loss network vgg16 from" in caplog.text and "relu4_3" in caplog.text
    totals = [sum(step.values()) for step in result.history]
    assert np.mean(totals[-4:]) < 0.7 * np.mean(totals[:4])
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.training["loss_network"] == "vgg16"
    assert ckpt.training["style_layers_used"] == ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]


def trained_with_cpu_bf16(native: bool, run: Path, trainset, vgg_weights, monkeypatch, **overrides):
    """Train as if the CPU did (or did not) compute bf16 natively -> (per-step loss totals, the
    autocast dtype the checkpoint records)."""
    monkeypatch.setattr("stylecast.training.common.cpu_computes_bf16", lambda: native)
    result = train(tiny_config(run, trainset, vgg_weights, **overrides), progress=False)
    totals = [sum(step.values()) for step in result.history]
    return totals, load_checkpoint(result.checkpoint).training["autocast_dtype"]


def test_cpu_mixed_precision_is_bf16_only_where_the_cpu_computes_it(tmp_path, trainset, vgg_weights, monkeypatch):
    args = (trainset, vgg_weights, monkeypatch)
    assert trained_with_cpu_bf16(True, tmp_path / "native", *args, steps=2)[1] == "torch.bfloat16"
    assert trained_with_cpu_bf16(True, tmp_path / "off", *args, amp=False, steps=2)[1] == "off"
    assert trained_with_cpu_bf16(False, tmp_path / "emulated", *args, steps=2)[1] == "off"  # emulated: slower only


@pytest.mark.slow  # on a CPU without native bf16 (no AVX512-BF16 or AMX) torch emulates it: minutes
def test_bf16_training_steps_learn_as_fp32_ones_do(tmp_path, trainset, vgg_weights, monkeypatch):
    totals, dtype = trained_with_cpu_bf16(True, tmp_path, trainset, vgg_weights, monkeypatch)
    assert dtype == "torch.bfloat16"
    assert np.mean(totals[-4:]) < 0.7 * np.mean(totals[:4])


def test_training_resumes_where_it_stopped(tmp_path, trainset, vgg_weights):
    first = train(tiny_config(tmp_path, trainset, vgg_weights, steps=8), progress=False)
    assert first.steps == 8
    resumed = train(tiny_config(tmp_path, trainset, vgg_weights, steps=12), progress=False)
    assert resumed.steps == 4  # steps 9..12 only
    # another style would go on from these weights under the new style's name: refused, files kept
    state = (tmp_path / "model.run" / "state.pt").read_bytes()
    another_style = str(trainset.parent / "media" / "styles" / "the_scream.jpg")
    with pytest.raises(InputError, match="holds the state of a run with --style .*starry_night.jpg, not .*the_scream"):
        train(tiny_config(tmp_path, trainset, vgg_weights, steps=20, style=another_style), progress=False)
    assert json.loads((tmp_path / "model.run" / "config.json").read_text())["style"][0].endswith("starry_night.jpg")
    assert (tmp_path / "model.run" / "state.pt").read_bytes() == state
    (tmp_path / "model.run" / "state.pt").write_bytes(b"not a state")
    with pytest.raises(InputError, match="cannot resume from .*state.pt"):
        train(tiny_config(tmp_path, trainset, vgg_weights, steps=20), progress=False)


def test_a_resumed_run_ends_with_the_weights_of_one_that_was_never_stopped(tmp_path, trainset, vgg_weights):
    # the resumed run draws the crops, motions and noise of the steps already taken again, so
    # it goes on with the data the uninterrupted run had (lr_final 1: the schedule does not
    # depend on --steps, so a 2-step run is the first half of a 4-step one)
    temporal = dict(temporal_weight=1e6, flat_scene_weight=1.0, temporal_noise="video", checkpoint_every=2, half=False)

    def weights(result) -> dict[str, torch.Tensor]:
        return load_checkpoint(result.checkpoint).state_dict

    straight = train(tiny_config(tmp_path / "straight", trainset, vgg_weights, steps=4, **temporal), progress=False)
    stopped = tiny_config(tmp_path / "stopped", trainset, vgg_weights, steps=2, **temporal)
    train(stopped, progress=False)
    resumed = train(dataclasses.replace(stopped, steps=4), progress=False)
    assert resumed.steps == 2
    assert resumed.history == straight.history[2:]
    assert all(torch.equal(weights(straight)[k], v) for k, v in weights(resumed).items())


def test_a_run_stopped_after_a_step_is_that_step_of_the_longer_run_and_says_so(tmp_path, trainset, vgg_weights):
    """--stop-after: the weights the full run had at that step (its learning rate decaying over
    all of --steps), written as --out, the record naming both numbers; past --steps is refused."""
    schedule = dict(steps=6, lr_final=0.1, checkpoint_every=3, half=False)
    full = load_checkpoint(
        train(tiny_config(tmp_path / "full", trainset, vgg_weights, **schedule), progress=False).checkpoint
    )
    assert load_checkpoint(tmp_path / "full" / "model.run" / "latest.pt").training["steps_taken"] == 6
    stopped = train(tiny_config(tmp_path / "stopped", trainset, vgg_weights, stop_after=3, **schedule), progress=False)
    assert stopped.steps == 3
    early = train(tiny_config(tmp_path / "early", trainset, vgg_weights, **(schedule | {"steps": 3})), progress=False)
    chosen, shorter = load_checkpoint(stopped.checkpoint), load_checkpoint(early.checkpoint)
    assert chosen.training["stop_after"] == 3 and chosen.training["steps_taken"] == 3 and chosen.training["steps"] == 6
    # the same crops, a slower decay: not the 3-step run's weights
    assert any(not torch.equal(chosen.state_dict[k], v) for k, v in shorter.state_dict.items())
    # resumed without --stop-after it goes on to the end of the schedule: it was the full run's first half
    resumed = train(tiny_config(tmp_path / "stopped", trainset, vgg_weights, **schedule), progress=False)
    assert resumed.steps == 3
    assert all(torch.equal(load_checkpoint(resumed.checkpoint).state_dict[k], v) for k, v in full.state_dict.items())
    with pytest.raises(InputError, match="--stop-after 7 is past --steps 6"):
        tiny_config(tmp_path, trainset, vgg_weights, steps=6, stop_after=7)


def test_loss_layers_the_vgg_weights_lack_are_refused_before_training(tmp_path, trainset, vgg_weights):
    with pytest.raises(InputError, match="content layer relu4_3 is not in the VGG weights"):
        train(tiny_config(tmp_path, trainset, vgg_weights, content_layer="relu4_3"), progress=False)
    with pytest.raises(InputError, match="none of the style layers"):
        train(tiny_config(tmp_path, trainset, vgg_weights, style_layers=("relu4_3", "relu5_3")), progress=False)
    assert not (tmp_path / "model.run").exists()


def test_a_style_picture_too_thin_for_the_style_size_is_refused(tmp_path):
    from stylecast.training.data import style_image_tensor

    write_rgb(tmp_path / "strip.png", np.full((8, 1024, 3), 128, np.uint8))
    with pytest.raises(InputError, match="short side is 4 px, under 16"):
        style_image_tensor(tmp_path / "strip.png", 512)
    assert style_image_tensor(tmp_path / "strip.png", 2048).shape == (1, 3, 16, 2048)


def test_same_seed_same_result(tmp_path, trainset, vgg_weights):
    a = train(tiny_config(tmp_path / "a", trainset, vgg_weights, steps=3, out=str(tmp_path / "a.pt")), progress=False)
    b = train(tiny_config(tmp_path / "b", trainset, vgg_weights, steps=3, out=str(tmp_path / "b.pt")), progress=False)
    assert a.history == b.history


def test_fine_tuning_starts_from_the_given_checkpoint_and_refuses_another_network(
    tmp_path, trainset, vgg_weights, small_model
):
    from stylecast.models.zoo import SHIPPED

    shipped, net = str(SHIPPED[small_model].path), SHIPPED[small_model].net
    # a shipped model's name or its file
    tuned = train(tiny_config(tmp_path, trainset, vgg_weights, steps=4, net=net, init=small_model), progress=False)
    fresh = train(tiny_config(tmp_path / "fresh", trainset, vgg_weights, steps=4, net=net), progress=False)
    # a trained network starts far closer to the style than a random one, at the same step
    assert sum(tuned.history[0].values()) < 0.5 * sum(fresh.history[0].values())
    with pytest.raises(InputError, match="not the johnson "):
        train(tiny_config(tmp_path / "std", trainset, vgg_weights, net="standard", init=shipped), progress=False)


def test_a_deeper_net_grows_from_a_shallower_one_and_starts_from_its_pictures(
    tmp_path, trainset, vgg_weights, small_model
):
    from stylecast.models.zoo import SHIPPED

    net = SHIPPED[small_model].net
    same = train(
        tiny_config(tmp_path / "same", trainset, vgg_weights, steps=2, net=net, init=small_model), progress=False
    )
    deeper = tiny_config(
        tmp_path / "deep", trainset, vgg_weights, steps=2, net=net, init=small_model, residual_blocks=7
    )
    grown = train(deeper, progress=False)
    # the two new blocks pass their input through: the first step sees the shipped net's pictures
    assert grown.history[0] == pytest.approx(same.history[0], rel=1e-4)
    assert grown.history[1] != pytest.approx(same.history[1], rel=1e-4)  # and they learn
    assert load_checkpoint(grown.checkpoint).kwargs["residual_blocks"] == 7
    with pytest.raises(InputError, match="not the johnson_small "):
        train(tiny_config(tmp_path / "shallow", trainset, vgg_weights, net=net, init=small_model, residual_blocks=3))


def test_losses_on_hand_made_inputs():
    x = torch.rand(2, 8, 5, 7)
    g = gram_matrix(x)
    assert g.shape == (2, 8, 8) and torch.allclose(g, g.transpose(1, 2))
    assert torch.allclose(g[0], x[0].reshape(8, -1) @ x[0].reshape(8, -1).T / (8 * 5 * 7))
    style = StyleLoss({"relu1_1": g[:1]})
    assert style({"relu1_1": x[:1]}) == 0 and style({"relu1_1": x[1:]}) > 0
    assert ContentLoss("relu1_1")({"relu1_1": x}, {"relu1_1": x}) == 0
    flat = torch.full((1, 3, 8, 8), 0.5)
    assert total_variation(flat) == 0
    stripes = flat.clone()
    stripes[..., ::2] = 0
    assert total_variation(stripes) > 0.4


def test_temporal_loss_is_zero_for_equivariant_functions_and_grows_with_flicker():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 48, 64)
    still = TemporalLoss(noise=0.0)
    # stylizers that commute with moving the image (pointwise linear maps) cost nothing
    assert float(still.of(lambda t: t, x)) == 0
    assert float(still.of(lambda t: 0.5 * t + 0.1, x)) < 1e-10
    # one that flickers (noise that does not move with the image) does, in proportion
    small = float(still.of(lambda t: t + 0.02 * torch.randn_like(t), x))
    large = float(still.of(lambda t: t + 0.2 * torch.randn_like(t), x))
    assert 0 < small < large
    # noise in both frames: 0.2^2 in the moved one, and less in the warped one (bilinear
    # resampling averages neighbouring noise)
    assert 0.2**2 < large < 2 * 0.2**2


def test_smooth_flow_moves_parts_of_the_picture_against_each_other_within_its_bound():
    torch.manual_seed(0)
    flow = smooth_flow(16, 96, 128, max_flow=4, spacing=32, device=torch.device("cpu"))
    assert flow.shape == (16, 96, 128, 2)
    pixels = flow * torch.tensor([128 / 2, 96 / 2])  # normalized -> pixels
    assert pixels.abs().max() <= 4 + 1e-4 and pixels.abs().max() > 3
    # smooth: neighbours move almost alike (at most about 2 * 4 px over the 32 px between control points)
    assert (pixels[:, 1:] - pixels[:, :-1]).abs().max() < 0.5
    assert (pixels[:, :, 1:] - pixels[:, :, :-1]).abs().max() < 0.5
    # but not as one: far apart, the motions differ by pixels (a shift of the whole frame: zero)
    assert (pixels[:, :, :16] - pixels[:, :, -16:]).abs().mean() > 1


def test_the_temporal_loss_with_flow_spares_pointwise_maps_and_charges_a_fixed_pattern():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 64, 64)
    flowing = TemporalLoss(noise=0.0, max_shift=0, max_degrees=0, max_zoom=0, max_flow=3)
    assert float(flowing.of(lambda t: 0.5 * t + 0.1, x)) < 1e-10
    # a texture fixed to the frame, not to the picture: the flow alone exposes it
    pattern = 0.2 * torch.rand(1, 3, 64, 64)
    assert float(flowing.of(lambda t: t + pattern, x)) > 1e-3
    assert float(TemporalLoss(noise=0.0, max_shift=0, max_degrees=0, max_zoom=0).of(lambda t: t + pattern, x)) < 1e-10


def neighbour_correlation(noise: torch.Tensor, distance: int = 1) -> torch.Tensor:
    """N x C x H x W -> N: correlation of pixels `distance` apart horizontally, per sample."""
    return (noise[..., distance:] * noise[..., :-distance]).mean(dim=(1, 2, 3)) / noise.pow(2).mean(dim=(1, 2, 3))


def test_video_noise_is_mostly_brightness_and_spatially_correlated_unlike_white_noise():
    torch.manual_seed(0)
    like = torch.zeros(32, 3, 64, 64)
    video, white = video_noise(like), white_noise(like)
    assert video.shape == like.shape
    assert torch.allclose(video.pow(2).mean(dim=(1, 2, 3)), torch.ones(32), atol=1e-4)  # unit variance each
    # brightness: the channels' mean carries most of the power ((1 + 0.5^2 / 3) / (1 + 0.5^2) = 0.87)
    assert 0.82 < float(video.mean(1).pow(2).mean()) < 0.92
    assert float(white.mean(1).pow(2).mean()) < 0.4  # a third, for independent channels
    # correlated over a blur drawn per sample (0.5 to 3 px): neighbours nearly independent in
    # some samples, nearly equal in others; white noise's neighbours are independent
    correlation = neighbour_correlation(video)
    assert correlation.min() < 0.5 and correlation.max() > 0.9
    assert neighbour_correlation(white).abs().max() < 0.05


def test_codec_noise_is_video_noise_with_coarser_blobs():
    torch.manual_seed(0)
    like = torch.zeros(64, 3, 96, 96)
    codec, video = codec_noise(like), video_noise(like)
    assert torch.allclose(codec.pow(2).mean(dim=(1, 2, 3)), torch.ones(64), atol=1e-4)  # unit variance each
    assert 0.82 < float(codec.mean(1).pow(2).mean()) < 0.92  # brightness, as video noise
    # 8 px apart, video noise (blurred by at most 3 px) is nearly independent; codec noise
    # (up to 16 px) is not: the coarse blocks and exposure changes of the bottle clip
    assert float(neighbour_correlation(video, 8).mean()) < 0.05
    assert float(neighbour_correlation(codec, 8).mean()) > 0.15
    # a crop too small for a 16 px kernel's reach still gets noise, blurred as far as it fits
    small = codec_noise(torch.zeros(2, 3, 32, 32))
    assert small.shape == (2, 3, 32, 32) and torch.isfinite(small).all()


@pytest.mark.parametrize("noise_model", ["video", "codec"])
def test_the_temporal_loss_trains_with_each_noise_model_and_with_flow(tmp_path, trainset, vgg_weights, noise_model):
    config = tiny_config(
        tmp_path, trainset, vgg_weights, steps=2, temporal_weight=1e6, temporal_noise=noise_model, temporal_flow=3.0
    )
    result = train(config, progress=False)
    assert all(step["temporal"] > 0 for step in result.history)
    saved = json.loads((tmp_path / "model.run" / "config.json").read_text())
    assert saved["temporal_noise"] == noise_model and saved["temporal_flow"] == 3.0
    with pytest.raises(InputError, match="--temporal-noise 'pink'"):
        tiny_config(tmp_path, trainset, vgg_weights, temporal_noise="pink")


def test_flattened_crops_keep_their_mean_and_lose_contrast_and_the_copy_is_re_noised():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 32, 32)
    flat, noisy = FlatSceneLoss(noise=0.02, min_contrast=0.03).pair(x)
    assert torch.allclose(flat.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=1e-5)
    contrast = flat.std(dim=(2, 3)) / x.std(dim=(2, 3))  # one factor per crop, the same in each channel
    assert torch.allclose(contrast, contrast[:, :1].expand_as(contrast), rtol=1e-4)
    assert contrast.min() >= 0.03 - 1e-4 and contrast.max() <= 1 + 1e-4
    assert contrast.min() < 0.1 and contrast.max() > 0.5  # log-uniform: spread over the range
    assert abs(float((noisy - flat).std()) - 0.02) < 0.001
    # the noise model shapes the copy's noise as it shapes the temporal loss's: white has a third
    # of its power in the channels' common part (brightness), video noise most of it
    for noise_model, low, high in (("white", 0.3, 0.37), ("video", 0.8, 0.95)):
        flat, noisy = FlatSceneLoss(noise=0.02, noise_model=noise_model).pair(x)
        change = noisy - flat
        assert abs(float(change.std()) - 0.02) < 0.001
        brightness = float(change.mean(dim=1).pow(2).mean() / change.pow(2).mean())
        assert low < brightness < high, (noise_model, brightness)


def test_the_flat_scene_term_trains_beside_the_temporal_loss(tmp_path, trainset, vgg_weights):
    config = tiny_config(tmp_path, trainset, vgg_weights, steps=2, temporal_weight=1e6, flat_scene_weight=3.0)
    result = train(config, progress=False)
    assert all(step["flat"] > 0 and step["temporal"] > 0 for step in result.history)
    without = train(tiny_config(tmp_path / "off", trainset, vgg_weights, steps=2, temporal_weight=1e6), progress=False)
    assert "flat" not in without.history[0]
    with pytest.raises(InputError, match="--temporal-weight"):
        tiny_config(tmp_path, trainset, vgg_weights, flat_scene_weight=3.0)


def test_the_temporal_terms_draw_from_their_own_generator_and_leave_the_global_one_alone():
    x = torch.rand(4, 3, 32, 32)
    torch.manual_seed(0)
    before = torch.get_rng_state()

    def draw(seed: int) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        motion = TemporalLoss(noise_model="video", max_flow=2.0, generator=generator).move(x)
        flat, noisy = FlatSceneLoss(noise_model="white", generator=generator).pair(x)
        return [motion.moved, motion.grid, flat, noisy]

    first, again, other = draw(1), draw(1), draw(2)
    assert torch.equal(torch.get_rng_state(), before)  # the crops' stream is untouched
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not any(torch.equal(a, b) for a, b in zip(first, other, strict=True))
    TemporalLoss().move(x)  # without a generator: torch's global one
    assert not torch.equal(torch.get_rng_state(), before)


def test_with_its_own_generator_a_temporal_run_sees_its_controls_crops(tmp_path, trainset, vgg_weights, monkeypatch):
    seen: list[torch.Tensor] = []

    class RecordedCrops(RandomCrops):
        def __getitem__(self, index: int) -> torch.Tensor:
            seen.append(super().__getitem__(index))
            return seen[-1]

    monkeypatch.setattr("stylecast.training.fast.RandomCrops", RecordedCrops)

    def crops(name: str, **temporal) -> list[torch.Tensor]:
        seen.clear()
        train(tiny_config(tmp_path / name, trainset, vgg_weights, steps=3, **temporal), progress=False)
        return list(seen)

    control = crops("control")
    own = crops("own", temporal_weight=1e6, flat_scene_weight=1.0, temporal_noise="video", temporal_rng="own")
    shared = crops("shared", temporal_weight=1e6, temporal_rng="shared")
    assert len(control) == len(own) == len(shared) == 6  # 3 steps of 2
    assert all(torch.equal(a, b) for a, b in zip(control, own, strict=True))
    assert torch.equal(control[0], shared[0])  # the first batch is drawn before any motion
    assert not all(torch.equal(a, b) for a, b in zip(control[2:], shared[2:], strict=True))
    with pytest.raises(InputError, match="--temporal-rng 'mine'"):
        tiny_config(tmp_path, trainset, vgg_weights, temporal_rng="mine")


def test_random_affine_moves_by_at_most_the_bounds():
    theta = random_affine(64, 100, 200, max_shift=4, max_degrees=0, max_zoom=0, device=torch.device("cpu"))
    assert torch.allclose(theta[:, :, :2], torch.eye(2).expand(64, 2, 2))
    shift_px = theta[:, :, 2] * torch.tensor([200 / 2, 100 / 2])
    assert shift_px.abs().max() <= 4 + 1e-4 and shift_px.abs().max() > 2
    image = torch.zeros(1, 1, 100, 200)
    image[..., 50, 100] = 1
    moved = warp(image, affine_grid(torch.tensor([[[1.0, 0, 10 * 2 / 200], [0, 1.0, 0]]]), image.shape))
    assert moved[0, 0, 50].argmax() == 90  # sampling 10 px to the right moves content 10 px left


def tiny_image_folder(folder, count=8, size=(96, 96)):
    """A few frames of the generated scene as JPEG files (training data the test makes itself)."""
    from stylecast.core.images import write_rgb
    from stylecast.realtime.demo import DemoScene

    folder.mkdir()
    scene = DemoScene(*size)
    for i in range(count):
        write_rgb(folder / f"{i}.jpg", scene.frame(i * 37))
    return folder


def test_two_process_ddp_training_on_cpu(tmp_path, vgg_weights):
    """torchrun with two processes (gloo): both ranks end with the same weights; rank 0 writes."""
    data = tiny_image_folder(tmp_path / "photos")
    out = tmp_path / "ddp.pt"
    train_on_two_ranks(
        ["train", "fast", "-q",
         "--style", str(data / "3.jpg"), "--data", str(data), "--out", str(out), "--net", "small_plain",
         "--steps", "4", "--batch-size", "2", "--scale-size", "64", "--crop-size", "48", "--style-size", "64",
         "--loss-network", "vgg19", "--vgg-weights", str(vgg_weights), "--device", "cpu", "--temporal-weight", "1e6",
         "--checkpoint-every", "2"],
        out,
    )  # fmt: skip
    assert json.loads((tmp_path / "ddp.run" / "config.json").read_text())["steps"] == 4


def test_dry_run_writes_nothing(tmp_path, vgg_weights):
    data = tiny_image_folder(tmp_path / "photos")
    result = train(
        FastConfig(
            style=str(data / "1.jpg"),
            data=str(data),
            out=str(tmp_path / "m.pt"),
            net="small_plain",
            steps=1000,
            batch_size=2,
            scale_size=64,
            crop_size=48,
            style_size=64,
            loss_network="vgg19",
            vgg_weights=str(vgg_weights),
            device="cpu",
            dry_run=True,
        ),  # fmt: skip
        progress=False,
    )
    assert result.checkpoint is None and result.steps == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_multistyle_training_lowers_the_loss_and_switches_styles_at_run_time(tmp_path, trainset, vgg_weights):
    from stylecast.realtime.processing import StyleOptions
    from stylecast.realtime.stylizer import Stylizer

    styles = trainset.parent / "media" / "styles"
    config = tiny_config(
        tmp_path, trainset, vgg_weights, net="multistyle_small", steps=20,
        style=(str(styles / "starry_night.jpg"), str(styles / "the_scream.jpg")), style_names=("night", "scream"),
    )  # fmt: skip
    result = train(config, progress=False)
    totals = [sum(step.values()) for step in result.history]
    assert np.mean(totals[-4:]) < 0.7 * np.mean(totals[:4])
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.family == "multistyle" and ckpt.styles == ["night", "scream"] and ckpt.kwargs["num_styles"] == 2

    frame = (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)
    stylizer = Stylizer.create(
        str(result.checkpoint), backend="torch", device="cpu", options=StyleOptions(), style="night"
    )
    night = stylizer.one(frame)
    stylizer.set_style("scream")  # live switch: same stylizer, nothing reloaded
    scream = stylizer.one(frame)
    stylizer.set_style("night:0.5,scream:0.5")
    blend = stylizer.one(frame)
    assert np.abs(night.astype(int) - scream.astype(int)).mean() > 1
    assert np.abs(blend.astype(int) - night.astype(int)).mean() < np.abs(scream.astype(int) - night.astype(int)).mean()


def test_missing_training_data_leaves_no_run_folder(tmp_path, trainset, vgg_weights):
    out = tmp_path / "out" / "model.pt"
    out.parent.mkdir()
    config = tiny_config(tmp_path, trainset, vgg_weights, data=str(tmp_path / "missing"), out=str(out))
    with pytest.raises(InputError, match="training data folder not found"):
        train(config, progress=False)
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize(
    ("bad_photo", "message"),
    [
        (lambda p: p.write_bytes(b""), "z.jpg is not a readable image"),
        (lambda p: p.write_text("not a photo"), "z.jpg is not a readable image"),
        (lambda p: write_rgb(p, np.zeros((4, 64, 3), np.uint8)), "z.jpg is 64x4; photos must be at least 8"),
    ],
    ids=["empty", "text", "4-px-tall"],
)
def test_a_bad_photo_in_the_training_data_is_named_before_training(tmp_path, trainset, vgg_weights, bad_photo, message):
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in sorted(trainset.glob("*.jpg"))[:3]:
        (photos / photo.name).symlink_to(photo)
    bad_photo(photos / "z.jpg")
    config = tiny_config(tmp_path, trainset, vgg_weights, data=str(photos), out=str(tmp_path / "out.pt"))
    with pytest.raises(InputError, match=message):
        train(config, progress=False)
    assert not (tmp_path / "out.run").exists()


def test_fewer_photos_than_a_batch_is_refused_instead_of_spinning(tmp_path, trainset, vgg_weights):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "only.jpg").symlink_to(sorted(trainset.glob("*.jpg"))[0])
    out = tmp_path / "out" / "model.pt"
    out.parent.mkdir()
    config = tiny_config(tmp_path, trainset, vgg_weights, data=str(photos), batch_size=2, out=str(out))
    with pytest.raises(InputError, match="fewer training images than one batch of 2"):
        train(config, progress=False)
    assert list(out.parent.iterdir()) == []  # refused before the run folder was made


def distilled(config, net_class):
    """Train `config` (a distillation) and check that its pixel loss to the teacher at least halved;
    the run, the student's checkpoint, the same network untrained, and a noise photo to compare them on."""
    result = train(config, progress=False)
    teacher_terms = [step["teacher"] for step in result.history]
    assert np.mean(teacher_terms[-5:]) < 0.5 * np.mean(teacher_terms[:5])
    ckpt = load_checkpoint(result.checkpoint)
    untrained = dataclasses.replace(ckpt, state_dict=net_class(**ckpt.kwargs).state_dict())
    photo = (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)
    return result, ckpt, untrained, photo


def test_a_student_distilled_from_a_teacher_comes_to_paint_like_it(tmp_path):
    """No VGG at all: the small net learns the shipped standard starry_night's outputs."""
    from stylecast.models.small import SmallTransformerNet
    from stylecast.realtime.stylizer import Stylizer

    data = tiny_image_folder(tmp_path / "photos", size=(128, 128))
    config = FastConfig(
        style="starry_night.jpg",  # only names the style: the teacher is the target
        data=str(data), out=str(tmp_path / "student.pt"), net="small_aa_eps_reflect", teacher="starry_night",
        teacher_weight=1.0, steps=40, batch_size=2, scale_size=96, crop_size=64, lr=5e-3, device="cpu",
        checkpoint_every=40, half=False,
    )  # fmt: skip
    result, ckpt, untrained, photo = distilled(config, SmallTransformerNet)
    assert set(result.history[0]) == {"teacher", "tv"}
    assert ckpt.training["teacher"] == "starry_night" and ckpt.kwargs["reflect_deep"] is True
    student, teacher, before = (
        Stylizer.create(model, "torch", "cpu").one(photo) for model in (ckpt, "starry_night", untrained)
    )
    assert np.abs(student.astype(float) - teacher).mean() < 0.7 * np.abs(before.astype(float) - teacher).mean()


def test_a_student_distilled_from_the_arbitrary_model_paints_the_painting_it_was_given(tmp_path, trainset):
    """The shipped arbitrary model, given The Starry Night, is the teacher of a single-style small net."""
    from stylecast.models.small import SmallTransformerNet
    from stylecast.realtime.stylizer import Stylizer

    painting = trainset.parent / "media" / "styles" / "starry_night.jpg"
    data = tiny_image_folder(tmp_path / "photos", size=(128, 128))
    config = FastConfig(
        style=str(painting), data=str(data), out=str(tmp_path / "student.pt"), net="small", teacher="arbitrary",
        teacher_weight=1.0, steps=40, batch_size=2, scale_size=96, crop_size=64, style_size=256, lr=5e-3,
        device="cpu", checkpoint_every=40, half=False,
    )  # fmt: skip
    _, ckpt, untrained, photo = distilled(config, SmallTransformerNet)
    assert ckpt.training["teacher"] == "arbitrary" and ckpt.family.value == "johnson"
    from stylecast.core.images import read_rgb

    teacher = Stylizer.create("arbitrary", "torch", "cpu", style_images=[(read_rgb(painting), 1.0)]).one(photo)
    student, before = (Stylizer.create(model, "torch", "cpu").one(photo) for model in (ckpt, untrained))
    assert np.abs(student.astype(float) - teacher).mean() < 0.7 * np.abs(before.astype(float) - teacher).mean()


def test_the_teacher_is_fed_at_its_size_multiple_and_margin_and_cropped_back():
    from stylecast.training.objectives import TeacherObjective

    class Recorder(torch.nn.Module):
        def forward(self, x):
            self.seen = tuple(x.shape[2:])
            return x

    recorder = Recorder()
    x = torch.rand(2, 3, 62, 70)
    for margin, multiple, fed in ((0, 8, (64, 72)), (8, 4, (80, 88)), (3, 1, (68, 76))):
        target = TeacherObjective(recorder, margin, multiple, 1.0).target(x)
        assert recorder.seen == fed and torch.equal(target, x)  # the same pixels, back where they were


def test_a_net_fed_as_the_runtime_feeds_it_gives_the_stylizers_picture():
    """What training scores with the margin in training is what a user sees: the shipped default's
    output through as_the_runtime_runs equals the runtime's frame (up to its 8-bit rounding; the
    runtime also clamps to 0..255, where a net's output may overshoot by a little)."""
    from stylecast.realtime.stylizer import Stylizer, load_model
    from stylecast.training.objectives import as_the_runtime_runs

    ckpt = load_model("starry_night-small")
    frame = np.random.default_rng(0).integers(0, 256, (62, 70, 3), dtype=np.uint8)
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = as_the_runtime_runs(ckpt.build().eval(), x, ckpt.contract.margin, ckpt.contract.size_multiple)
    shown = Stylizer.create(ckpt, "torch", "cpu").one(frame)
    assert y.shape == (1, 3, 62, 70)
    assert np.abs(y[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 - shown).max() <= 1.0


@pytest.mark.parametrize("in_training", [False, True])
def test_with_the_margin_in_training_the_net_learns_on_the_padded_crop(tmp_path, monkeypatch, in_training):
    """--margin-in-training: the net is fed each crop with the runtime's reflected margin round it
    (64 + 2 x 8 px) and its output cropped back; without it, the bare crop."""
    from stylecast.models.small import SmallTransformerNet
    from stylecast.training import fast

    seen = []

    class Recording(SmallTransformerNet):
        def forward(self, x):
            seen.append(tuple(x.shape[2:]))
            return super().forward(x)

    architecture, _, kwargs = fast.NETS["small"]
    monkeypatch.setitem(fast.NETS, "small", (architecture, Recording, kwargs))
    data = tiny_image_folder(tmp_path / "photos", size=(128, 128))
    config = FastConfig(
        style="starry_night.jpg", data=str(data), out=str(tmp_path / "student.pt"), net="small",
        teacher="starry_night", teacher_weight=1.0, steps=2, batch_size=2, scale_size=96, crop_size=64, lr=5e-3,
        device="cpu", checkpoint_every=2, margin=8, margin_in_training=in_training,
    )  # fmt: skip
    result = train(config, progress=False)
    assert set(seen) == {(80, 80) if in_training else (64, 64)}
    assert all(np.isfinite(step["teacher"]) for step in result.history)
    assert load_checkpoint(result.checkpoint).contract.margin == 8


def test_the_gram_terms_leave_out_the_style_border(vgg_weights):
    """--style-border 16: what the net paints within 16 px of the crop's edge changes no Gram term
    (nothing rewards a texture there), what it paints inside does."""
    from stylecast.models.vgg import load_vgg
    from stylecast.training.objectives import PerceptualObjective

    painting = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    objective = PerceptualObjective.build(
        load_vgg(vgg_weights), ["relu1_1", "relu2_1"], "relu2_1", [painting], False, 0.0, 1.0, torch.device("cpu"),
        border=16,
    )  # fmt: skip
    x = torch.rand(2, 3, 80, 96, generator=torch.Generator().manual_seed(1))
    y = torch.rand(2, 3, 80, 96, generator=torch.Generator().manual_seed(2))
    chosen = torch.zeros(2, dtype=torch.long)
    edged, inside = y.clone(), y.clone()
    edged[:, :, :, :16] = 0.5 + 0.5 * torch.sign(torch.sin(torch.arange(16.0)))  # stripes along the left edge
    inside[:, :, 30:50, 40:60] = 0.0
    style = float(objective(x, y, chosen)["style"])
    assert float(objective(x, edged, chosen)["style"]) == style
    assert float(objective(x, inside, chosen)["style"]) != style


def test_a_style_border_that_leaves_nothing_of_the_crop_is_refused():
    with pytest.raises(InputError, match="--style-border 32 leaves nothing of a 64 px crop"):
        FastConfig(style=("a.jpg",), data=".", out="m.pt", crop_size=64, style_border=32)


def test_a_multistyle_student_learns_each_style_from_a_multistyle_teacher(tmp_path):
    """The small multi-style net distilled from the shipped eight_paintings in two of its styles
    (in the teacher's other order): each sample is painted by the teacher in that sample's style."""
    from stylecast.models.multistyle import MultiStyleSmallNet
    from stylecast.realtime.demo import DemoScene
    from stylecast.realtime.stylizer import Stylizer

    data = tiny_image_folder(tmp_path / "photos", size=(128, 128))
    config = FastConfig(
        style=("the_scream.jpg", "starry_night.jpg"), style_names=("the_scream", "starry_night"), data=str(data),
        out=str(tmp_path / "student.pt"), net="multistyle_small", teacher="eight_paintings", teacher_weight=1.0,
        steps=60, batch_size=4, scale_size=96, crop_size=64, lr=5e-3, device="cpu", checkpoint_every=60, half=False,
    )  # fmt: skip
    _, ckpt, untrained, _ = distilled(config, MultiStyleSmallNet)
    assert ckpt.styles == ["the_scream", "starry_night"] and ckpt.training["teacher"] == "eight_paintings"
    # a frame of the scene it learned on, not among its training frames: on noise, far from its 60
    # steps' data, the student's error to either of the retrained teacher's styles is about the same
    photo = DemoScene(96, 64).frame(1000)
    for name, other in (("the_scream", "starry_night"), ("starry_night", "the_scream")):
        student, before = (Stylizer.create(model, "torch", "cpu", style=name).one(photo) for model in (ckpt, untrained))
        teacher, teacher_other = (
            Stylizer.create("eight_paintings", "torch", "cpu", style=s).one(photo).astype(float) for s in (name, other)
        )
        error = np.abs(student.astype(float) - teacher).mean()
        assert error < 0.7 * np.abs(before.astype(float) - teacher).mean()
        assert error < np.abs(student.astype(float) - teacher_other).mean()  # its own style, not the other


def test_a_multistyle_student_learns_each_painting_from_the_arbitrary_model(tmp_path, trainset):
    """The shipped arbitrary model, given one painting per style, is the teacher of a multi-style
    small net: each style comes to paint as the arbitrary model given that painting (two paintings
    it paints far apart on the noise photo: 53 grey levels)."""
    from stylecast.core.images import read_rgb
    from stylecast.models.multistyle import MultiStyleSmallNet
    from stylecast.realtime.stylizer import Stylizer

    paintings = [trainset.parent / "media" / "styles" / f"{name}.jpg" for name in ("starry_night", "mondrian")]
    data = tiny_image_folder(tmp_path / "photos", size=(128, 128))
    config = FastConfig(
        style=tuple(map(str, paintings)), data=str(data), out=str(tmp_path / "student.pt"), net="multistyle_small",
        teacher="arbitrary", teacher_weight=1.0, steps=60, batch_size=4, scale_size=96, crop_size=64, lr=5e-3,
        device="cpu", checkpoint_every=60, half=False,
    )  # fmt: skip
    _, ckpt, untrained, photo = distilled(config, MultiStyleSmallNet)
    assert ckpt.styles == ["starry_night", "mondrian"] and ckpt.family.value == "multistyle"
    teachers = {
        path.stem: Stylizer.create("arbitrary", "torch", "cpu", style_images=[(read_rgb(path), 1.0)]).one(photo)
        for path in paintings
    }
    for name, other in (("starry_night", "mondrian"), ("mondrian", "starry_night")):
        student, before = (Stylizer.create(model, "torch", "cpu", style=name).one(photo) for model in (ckpt, untrained))
        error = np.abs(student.astype(float) - teachers[name]).mean()
        assert error < 0.7 * np.abs(before.astype(float) - teachers[name]).mean()
        assert error < np.abs(student.astype(float) - teachers[other]).mean()  # its own painting, not the other


def test_a_multistyle_teacher_must_know_every_style(tmp_path):
    data = tiny_image_folder(tmp_path / "photos", size=(128, 128))
    out = tmp_path / "out" / "student.pt"
    config = FastConfig(
        style=("starry_night.jpg", "candy.jpg"), data=str(data), out=str(out), net="multistyle_small",
        teacher="eight_paintings", steps=2, batch_size=2, scale_size=96, crop_size=64, device="cpu",
    )  # fmt: skip
    with pytest.raises(InputError, match="--teacher eight_paintings paints starry_night, .*; not candy"):
        train(config, progress=False)
    assert not out.parent.exists()


def test_a_multistyle_net_cannot_learn_from_a_single_style_teacher(tmp_path):
    data = tiny_image_folder(tmp_path / "photos", size=(128, 128))
    config = FastConfig(
        style=("starry_night.jpg", "the_scream.jpg"), data=str(data), out=str(tmp_path / "m.pt"),
        net="multistyle_small", teacher="starry_night", steps=2, batch_size=2, scale_size=96, crop_size=64,
        device="cpu",
    )  # fmt: skip
    with pytest.raises(InputError, match="a multi-style net learns from a multi-style or arbitrary-style one"):
        train(config, progress=False)


def test_relative_layer_weights_let_every_layer_count(vgg19_full, trainset):
    """On the Caffe VGG19 a photo's Gram error against the painting spans orders of magnitude across
    Gatys' layers; relative weights bring every layer's term to the same order."""
    from stylecast.core.images import read_rgb
    from stylecast.models.vgg import load_vgg
    from stylecast.training.data import style_image_tensor, to_tensor
    from stylecast.training.objectives import PerceptualObjective

    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    painting = style_image_tensor(trainset.parent / "media" / "styles" / "starry_night.jpg", 256)
    photo = to_tensor(read_rgb(sorted(trainset.iterdir())[0])[:128, :128])[None]
    spans = {}
    for relative in (False, True):
        objective = PerceptualObjective.build(
            load_vgg(vgg19_full), layers, "relu2_2", [painting], relative, 1.0, 1.0, torch.device("cpu")
        )
        features = objective.vgg(photo)
        terms = [
            objective.style_loss.layer_weights[name] * float(F.mse_loss(gram_matrix(features[name]), objective.style_grams[name]))
            for name in layers
        ]  # fmt: skip
        spans[relative] = max(terms) / min(terms)
    assert spans[False] > 1000 and spans[True] < 30


def test_a_student_can_also_match_the_paintings_grams(tmp_path, vgg_weights):
    data = tiny_image_folder(tmp_path / "photos", size=(128, 128))
    config = FastConfig(
        style=str(data / "1.jpg"), data=str(data), out=str(tmp_path / "student.pt"), net="small_aa_eps_reflect",
        teacher="starry_night", teacher_weight=1.0, teacher_style_weight=1e-6, loss_network="vgg19",
        vgg_weights=str(vgg_weights), style_layers=("relu1_2", "relu2_2"), steps=3, batch_size=2, scale_size=96,
        crop_size=64, style_size=64, device="cpu", checkpoint_every=3,
    )  # fmt: skip
    result = train(config, progress=False)
    assert set(result.history[0]) == {"teacher", "style", "tv"} and result.history[0]["style"] > 0
    training = load_checkpoint(result.checkpoint).training
    assert training["teacher"] == "starry_night" and training["style_layers_used"] == ["relu1_2", "relu2_2"]


def test_an_lpips_term_keeps_the_output_nearer_its_photo(tmp_path, trainset, vgg_weights):
    """--lpips-weight: the same run with LPIPS to the photo beside the VGG losses ends with outputs
    LPIPS puts nearer their photos than the run without it."""
    from conftest import shared_path

    from stylecast.models.lpips import load_lpips

    weights = shared_path("weights")
    lpips = load_lpips("alex", weights)
    crops = RandomCrops(trainset, 96, 64)
    photos = torch.stack([crops[i] for i in range(4)])  # 4 x 3 x 64 x 64
    distances = {}
    for weight in (0.0, 1e8):
        config = tiny_config(
            tmp_path / str(weight), trainset, vgg_weights, lpips_weight=weight,
            lpips_net="alex", lpips_weights=str(weights),
        )  # fmt: skip
        result = train(config, progress=False)
        assert ("lpips" in result.history[-1]) == bool(weight)
        net = load_checkpoint(result.checkpoint).build().float().eval()
        with torch.no_grad():
            distances[weight] = float(lpips(net(photos).clamp(0, 1), photos).mean())
    assert distances[1e8] < 0.9 * distances[0.0]


def test_an_lpips_term_without_its_weights_is_refused_before_training(tmp_path, trainset, vgg_weights):
    config = tiny_config(tmp_path, trainset, vgg_weights, lpips_weight=1.0, lpips_weights=str(tmp_path / "none"))
    with pytest.raises(InputError, match="--lpips-weight: LPIPS weights folder .* lacks lpips_v0.1_vgg16_lin.pth"):
        train(config, progress=False)
    assert not Path(config.out).exists() and not (tmp_path / "model.pt.run").exists()
