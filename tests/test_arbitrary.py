"""Arbitrary style transfer: the transforms do what their papers say; training and running work."""

import re

import numpy as np
import pytest
import torch
from conftest import train_on_two_ranks

from stylecast.export.check import max_differences, onnx_runner
from stylecast.export.onnx import export_onnx
from stylecast.models.adain import (
    CHANNELS,
    ArbitraryStyleNet,
    StyleBankNet,
    adain,
    channel_stats,
    covariance,
    interpolate_statistics,
    sqrtm_newton_schulz,
    style_statistics,
    wct,
)
from stylecast.models.checkpoint import Checkpoint, InputContract


def test_adain_gives_the_content_the_style_statistics():
    torch.manual_seed(0)
    content, style = torch.randn(2, 8, 10, 12) * 3 + 1, torch.randn(2, 8, 6, 6) * 0.5 - 2
    moved = adain(content, *channel_stats(style))
    mean, std = channel_stats(moved)
    target_mean, target_std = channel_stats(style)
    assert torch.allclose(mean, target_mean, atol=1e-4) and torch.allclose(std, target_std, atol=1e-3)


def test_newton_schulz_square_roots_match_the_eigendecomposition():
    torch.manual_seed(0)
    a = torch.randn(3, 16, 40)
    spd = a @ a.transpose(1, 2) / 40 + 0.1 * torch.eye(16)
    root, inverse_root = sqrtm_newton_schulz(spd, iterations=25)
    assert torch.allclose(root @ root, spd, atol=1e-3)
    assert torch.allclose(inverse_root @ spd @ inverse_root, torch.eye(16).expand(3, 16, 16), atol=1e-2)


def test_wct_gives_the_content_the_style_covariance():
    torch.manual_seed(0)
    mixing = torch.randn(6, 6)
    content = torch.randn(1, 6, 16, 16)
    style = (mixing @ torch.randn(1, 6, 256)).reshape(1, 6, 16, 16) + 3
    mean, root = style_statistics(style, "wct")
    moved = wct(content, mean, root)
    got_mean, got_cov = covariance(moved)
    want_mean, want_cov = covariance(style)
    assert torch.allclose(got_mean, want_mean, atol=1e-3)
    assert torch.allclose(got_cov, want_cov, rtol=0.05, atol=0.05)


def test_style_interpolation_is_a_weighted_mix():
    a = (torch.zeros(1, 4), torch.ones(1, 4))
    b = (torch.ones(1, 4), 3 * torch.ones(1, 4))
    mean, spread = interpolate_statistics([a, b], [3.0, 1.0])
    assert torch.allclose(mean, torch.full((1, 4), 0.25)) and torch.allclose(spread, torch.full((1, 4), 1.5))


@pytest.mark.parametrize("transform", ["adain", "wct"])
def test_a_style_bank_paints_each_style_as_the_net_given_that_style_and_a_mix_as_its_mix(transform):
    """StyleBankNet with style weights as a multi-style net takes them: a one-hot row is the
    arbitrary net given that style alone, a mixed row the net given the mixed statistics."""
    from stylecast.realtime.stylizer import load_model

    net = load_model("arbitrary").build().float().eval()
    net.transform = transform
    generator = torch.Generator().manual_seed(1)
    pictures = [
        torch.rand(1, 3, 64, 64, generator=generator) * scale + shift
        for scale, shift in ((1, 0), (0.3, 0.6), (0.5, 0.1))
    ]
    with torch.no_grad():
        stats = [style_statistics(net.encode(picture), transform) for picture in pictures]
    bank = StyleBankNet(net, stats)
    x = torch.rand(2, 3, 32, 48, generator=generator)
    rows = torch.tensor([[0.0, 1.0, 0.0], [0.25, 0.0, 0.75]])
    full = torch.ones(1, 1)
    with torch.no_grad():
        got = bank(x, rows)
        alone = net(x[:1], *stats[1], full)
        mixed = net(x[1:], *interpolate_statistics([stats[0], stats[2]], [0.25, 0.75]), full)
        assert torch.allclose(got[:1], alone, atol=1e-4) and torch.allclose(got[1:], mixed, atol=1e-4)
        assert not torch.allclose(alone, net(x[:1], *stats[0], full), atol=1e-3)  # the styles differ


def random_model(
    transform: str, deepest: str = "relu3_1", skips: tuple[str, ...] = (), upsampling: str = "nearest"
) -> Checkpoint:
    torch.manual_seed(0)
    kwargs = {"transform": transform, "encoder": "compact", "width": 32, "vgg_preprocessing": None, "deepest": deepest}
    net = ArbitraryStyleNet(**kwargs, skips=skips, upsampling=upsampling)
    if skips:  # joins that carry something (they start at zero)
        kwargs |= {"skips": list(skips), "upsampling": upsampling}
        for join in net.decoder.skip.values():
            torch.nn.init.normal_(join.weight, 0, 0.1)
    return Checkpoint(
        "arbitrary", kwargs, net.state_dict(), InputContract(size_multiple=net.size_multiple), "arbitrary"
    )


@pytest.mark.parametrize(
    ("deepest", "skips", "upsampling"),
    [
        ("relu3_1", (), "nearest"),
        ("relu4_1", (), "nearest"),
        ("relu4_1", ("relu1_1", "relu2_1", "relu3_1"), "nearest"),
        ("relu4_1", ("relu2_1", "relu3_1"), "bilinear"),
    ],
)
@pytest.mark.parametrize("transform", ["adain", "wct"])
def test_export_takes_the_style_statistics_as_inputs(transform, deepest, skips, upsampling, tmp_path):
    ckpt = random_model(transform, deepest, skips, upsampling)
    path = export_onnx(ckpt, tmp_path / "m.onnx")
    import onnx

    names = [i.name for i in onnx.load(str(path)).graph.input]
    assert names == ["input", "style_mean", "style_spread", "alpha"]
    assert max(max_differences(ckpt, onnx_runner(path), sizes=[(64, 96), (96, 64)]).values()) < 1e-3


@pytest.mark.parametrize(("deepest", "channels", "multiple"), [("relu3_1", 256, 4), ("relu4_1", 512, 8)])
def test_the_style_is_moved_at_the_deepest_tap_and_the_decoder_mirrors_the_encoder(deepest, channels, multiple):
    net = ArbitraryStyleNet(deepest=deepest).eval()
    x = torch.rand(2, 3, 48, 64)
    with torch.no_grad():
        taps = net.encoder(x)
        features = net.encode(x)
        assert list(taps) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1"][: 3 + (deepest == "relu4_1")]
        assert features.shape == (2, channels, 48 // multiple, 64 // multiple) and net.size_multiple == multiple
        assert net.decoder(features).shape == x.shape


def test_the_skips_start_at_zero_then_carry_the_contents_shallower_taps_to_the_decoder():
    """A relu4_1 net with relu2_1 and relu3_1 skips paints the image's shape (its export: the
    export test); untrained, the shallower taps change nothing; once the joins learn, they do,
    and only through where things are (a tap's channel offsets and scales are normalized away);
    bilinear upsampling takes out the steps the deepest tap's 8 px cells leave."""
    from stylecast.models.adain import SkipDecoder

    torch.manual_seed(0)
    net = ArbitraryStyleNet(deepest="relu4_1", skips=("relu2_1", "relu3_1")).eval()
    assert isinstance(net.decoder, SkipDecoder) and list(net.decoder.skip) == ["relu2_1", "relu3_1"]
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        taps = net.encoder(x)
        deepest = taps["relu4_1"]
        other = {**taps, "relu3_1": torch.rand_like(taps["relu3_1"])}
        assert net.decode(deepest, taps).shape == x.shape
        assert torch.equal(net.decode(deepest, taps), net.decode(deepest, other))
        for join in net.decoder.skip.values():
            join.weight.normal_(0, 0.1)
        joined = net.decode(deepest, other)
        assert not torch.allclose(joined, net.decode(deepest, taps), atol=1e-4)
        offset = {**taps, "relu3_1": 3 * other["relu3_1"] + 2}  # the same places, other statistics
        assert torch.allclose(joined, net.decode(deepest, offset), atol=1e-5)
    bilinear = ArbitraryStyleNet(deepest="relu4_1", skips=("relu2_1", "relu3_1"), upsampling="bilinear").eval()
    bilinear.load_state_dict(net.state_dict())  # the same weights, another upsampling
    with torch.no_grad():
        smooth = bilinear.decode(deepest, other)
    assert smooth.shape == joined.shape and not torch.allclose(smooth, joined, atol=1e-4)

    def step_at_cell_edges(image: torch.Tensor) -> torch.Tensor:  # columns 8|7, 16|15, ... of N x 3 x 48 x 64
        return (image[..., 8::8] - image[..., 7:-1:8]).abs().mean()

    # nearest repeats each 8 px cell of the deepest tap, so its picture steps where the cells meet
    assert step_at_cell_edges(smooth) < step_at_cell_edges(joined)
    with pytest.raises(ValueError, match="skips must be taps shallower than relu3_1"):
        ArbitraryStyleNet(deepest="relu3_1", skips=("relu3_1",))
    with pytest.raises(ValueError, match="upsampling is a setting of the decoder with skips"):
        ArbitraryStyleNet(deepest="relu4_1", upsampling="bilinear")


def test_a_checkpoint_from_before_the_deepest_argument_builds_as_relu3_1():
    """The first shipped model's checkpoint had no `deepest` in its kwargs: it builds as relu3_1,
    the only depth of its day, and takes the weights by their names."""
    import dataclasses

    from stylecast.realtime.stylizer import load_model

    shipped = load_model("arbitrary-relu3_1")
    assert shipped.kwargs["deepest"] == "relu3_1" and shipped.contract.size_multiple == 4
    kwargs = {k: v for k, v in shipped.kwargs.items() if k != "deepest"}
    net = dataclasses.replace(shipped, kwargs=kwargs).build()  # builds with the weights, strictly
    assert isinstance(net, ArbitraryStyleNet) and net.tap == "relu3_1"


def test_alpha_zero_reconstructs_and_alpha_moves_towards_the_style():
    net = ArbitraryStyleNet().eval()
    x, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 48, 48) * 0.2
    with torch.no_grad():
        mean, std = style_statistics(net.encode(style), "adain")
        zero = net(x, mean, std, torch.zeros(1, 1))
        half = net(x, mean, std, torch.full((1, 1), 0.5))
        full = net(x, mean, std, torch.ones(1, 1))
        assert torch.allclose(zero, net.decoder(net.encode(x)), atol=1e-5)
        assert (half - zero).abs().mean() < (full - zero).abs().mean()


def test_calibration_gives_the_compact_encoder_vggs_scale(trainset, vgg19_full):
    from stylecast.models.adain import CompactEncoder
    from stylecast.models.vgg import load_vgg
    from stylecast.training.data import RandomCrops

    encoder = CompactEncoder(deepest="relu4_1")
    vgg = load_vgg(str(vgg19_full)).build(list(encoder.taps))
    photos = RandomCrops(str(trainset), 96, 64)
    x = torch.stack([photos[i] for i in range(4)])
    with torch.no_grad():
        teacher = vgg(x)
        before = encoder(x)
        encoder.calibrate(x, teacher)
        after = encoder(x)
    for tap in encoder.taps:
        rms = teacher[tap].pow(2).mean().sqrt()
        assert before[tap].pow(2).mean().sqrt() < rms / 50  # the gap distillation would otherwise crawl across
        assert after[tap].pow(2).mean().sqrt() == pytest.approx(float(rms), rel=1e-3)
    restored = CompactEncoder(deepest="relu4_1")
    restored.load_state_dict(encoder.state_dict())  # the gains travel with the weights
    assert torch.equal(restored.gains, encoder.gains)


def test_each_phase_decays_its_learning_rate_from_its_first_step_to_its_last():
    from stylecast.training.common import cosine_lr

    assert cosine_lr(1e-3, 0.1, 1, 50) == pytest.approx(1e-3)
    assert cosine_lr(1e-3, 0.1, 50, 50) == pytest.approx(1e-4)
    assert cosine_lr(1e-3, 0.1, 2, 50) > cosine_lr(1e-3, 0.1, 25, 50) > cosine_lr(1e-3, 0.1, 49, 50)
    assert cosine_lr(5e-4, 1.0, 30, 50) == pytest.approx(5e-4)  # 1: constant


def test_the_gram_style_term_sees_how_channels_go_together_where_the_moments_do_not():
    from stylecast.training.arbitrary import gram_loss, moment_loss
    from stylecast.training.losses import gram_matrix

    x = torch.rand(2, 1, 8, 8)
    together = {"relu1_1": torch.cat([x, x], 1)}  # N x 2 x 8 x 8: the two channels equal
    apart = {"relu1_1": torch.cat([x, x.flip(-1)], 1)}  # the same values per channel, elsewhere
    assert moment_loss(together, apart) == pytest.approx(0, abs=1e-6)
    expected = torch.nn.functional.mse_loss(gram_matrix(together["relu1_1"]), gram_matrix(apart["relu1_1"]))
    assert gram_loss(together, apart) == pytest.approx(float(expected)) and float(expected) > 1e-4
    assert gram_loss(together, together) == 0


def test_the_vgg_adain_content_term_aims_at_the_papers_target(tmp_path, trainset, vgg19_full):
    """--content-space vgg-adain compares the output's VGG tap with AdaIN of VGG's own taps of the
    content and the style: with VGG itself as the encoder that is the target "vgg" aims at too, so
    the two train the same weights; with the compact encoder, whose features make the other
    target, they part."""
    from stylecast.models.checkpoint import load_checkpoint
    from stylecast.training.arbitrary import ArbitraryConfig, train_arbitrary

    common = {
        "data": str(trainset), "styles": str(trainset.parent / "media" / "styles"), "decoder_steps": 3,
        "batch_size": 2, "scale_size": 96, "crop_size": 64, "vgg_weights": str(vgg19_full), "device": "cpu",
        "half": False, "lr": 1e-3,
    }  # fmt: skip

    def decoder(name: str, **settings) -> dict[str, torch.Tensor]:
        config = ArbitraryConfig(out=str(tmp_path / f"{name}.pt"), **common, **settings)
        weights = load_checkpoint(train_arbitrary(config, progress=False)).state_dict
        return {k: v for k, v in weights.items() if k.startswith("decoder.")}

    paper, vgg_adain = (decoder(f"vgg-{space}", encoder="vgg", content_space=space) for space in ("vgg", "vgg-adain"))
    assert all(torch.equal(paper[k], vgg_adain[k]) for k in paper)
    own, vgg_adain = (decoder(f"compact-{s}", distill_steps=2, content_space=s) for s in ("vgg", "vgg-adain"))
    assert not all(torch.equal(own[k], vgg_adain[k]) for k in own)


@pytest.mark.parametrize(
    "content_space, lr_final, style_loss",
    [("vgg", 1.0, "moments"), ("encoder", 0.1, "gram"), ("vgg-adain", 1.0, "moments")],
    ids=["vgg-space", "encoder-space-gram", "vgg-adain"],
)
def test_training_phases_lower_their_losses_and_the_model_runs(
    tmp_path, trainset, vgg19_full, caplog, content_space, lr_final, style_loss
):
    import logging

    from stylecast.models.checkpoint import load_checkpoint
    from stylecast.realtime.stylizer import Stylizer
    from stylecast.training.arbitrary import ArbitraryConfig, train_arbitrary

    styles = trainset.parent / "media" / "styles"
    config = ArbitraryConfig(
        data=str(trainset), styles=str(styles), out=str(tmp_path / "a.pt"), distill_steps=12, decoder_steps=12,
        batch_size=2, scale_size=96, crop_size=64, lr=1e-3, vgg_weights=str(vgg19_full), device="cpu",
        content_space=content_space, lr_final=lr_final, style_loss=style_loss,
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="stylecast.train"):
        out = train_arbitrary(config, progress=False)
    assert f"({style_loss}), the style moved at relu4_1; content term in the {content_space} space" in caplog.text
    # the encoder's distance to VGG per tap, logged where the decoder's phase starts
    errors = re.search(r"error per tap: relu1_1=(\S+) relu2_1=(\S+) relu3_1=(\S+) relu4_1=(\S+)", caplog.text)
    assert errors and all(0 < float(e) < 2 for e in errors.groups())
    ckpt = load_checkpoint(out)  # the paper's depth by default
    assert ckpt.kwargs["deepest"] == "relu4_1" and ckpt.contract.size_multiple == 8
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "a.run"))
    events.Reload()
    distill = [e.value for e in events.Scalars("loss/distill")]
    style = [e.value for e in events.Scalars("loss/style")]
    assert np.mean(distill[-3:]) < np.mean(distill[:3]) and np.mean(style[-3:]) < np.mean(style[:3])
    assert [e.step for e in events.Scalars("distill_error/relu4_1")] == [12]

    from stylecast.core.images import read_rgb

    painting = read_rgb(styles / "the_scream.jpg")
    frame = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    for transform in ("adain", "wct"):
        stylizer = Stylizer.create(
            str(out), backend="torch", device="cpu", style_images=[(painting, 1.0)], transform=transform
        )
        assert stylizer.one(frame).shape == frame.shape


def test_teacher_forcing_feeds_each_stage_the_teachers_previous_tap():
    """forced(): every stage after the first sees VGG's tap before it (scaled by that tap's gain),
    not the stage before it, so the deepest tap does not change with the student's first stages."""
    from stylecast.models.adain import CompactEncoder

    torch.manual_seed(0)
    encoder = CompactEncoder(8, "relu4_1")
    encoder.gains.copy_(torch.tensor([2.0, 3.0, 5.0, 7.0]))
    x = torch.rand(1, 3, 32, 32)
    teacher = {t: torch.rand(1, c, 32 // 2**i, 32 // 2**i) for i, (t, c) in enumerate(CHANNELS.items())}
    with torch.no_grad():
        forced = encoder.forced(x, teacher)
        assert torch.allclose(forced["relu4_1"], 7.0 * encoder.stage4(teacher["relu3_1"] / 5.0))
        assert torch.allclose(forced["relu2_1"], 3.0 * encoder.stage2(teacher["relu1_1"] / 2.0))
        assert torch.equal(forced["relu1_1"], encoder(x)["relu1_1"])
        encoder.stage1[0][1].weight.add_(1.0)  # another first stage: the chained taps move, the forced do not
        assert torch.equal(encoder.forced(x, teacher)["relu4_1"], forced["relu4_1"])
        assert not torch.allclose(encoder(x)["relu4_1"], forced["relu4_1"])


def test_forced_distillation_logs_each_stage_alone_then_the_chained_encoder(tmp_path, trainset, vgg19_full, caplog):
    import logging

    from stylecast.training.arbitrary import ArbitraryConfig, train_arbitrary

    config = ArbitraryConfig(
        data=str(trainset), styles=str(trainset.parent / "media" / "styles"), out=str(tmp_path / "a.pt"),
        distill_steps=12, forced_steps=8, decoder_steps=1, batch_size=2, scale_size=96, crop_size=64,
        vgg_weights=str(vgg19_full), device="cpu",
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="stylecast.train"):
        train_arbitrary(config, progress=False)
    forced = re.search(
        r"each stage alone \(forced\), error per tap: relu1_1=\S+ relu2_1=\S+ relu3_1=\S+ relu4_1=(\S+)", caplog.text
    )
    chained = re.search(
        r"distilled encoder, error per tap: relu1_1=\S+ relu2_1=\S+ relu3_1=\S+ relu4_1=(\S+)", caplog.text
    )
    assert forced and chained and caplog.text.index(forced.group(0)) < caplog.text.index(chained.group(0))
    assert 0 < float(forced.group(1)) < 2 and 0 < float(chained.group(1)) < 2


def test_a_fine_tune_keeps_the_models_encoder_and_trains_its_decoder_on_deeper_style_taps(
    tmp_path, trainset, vgg19_full, caplog
):
    """--init the shipped relu3_1 model, --style-to relu4_1: no distillation, the encoder as
    shipped, the decoder moved by a style term that reaches relu4_1."""
    import logging

    from stylecast.models.checkpoint import load_checkpoint
    from stylecast.models.zoo import model_path
    from stylecast.training.arbitrary import ArbitraryConfig, train_arbitrary

    config = ArbitraryConfig(
        data=str(trainset), styles=str(trainset.parent / "media" / "styles"), out=str(tmp_path / "a.pt"),
        init="arbitrary-relu3_1", deepest="relu3_1", style_to="relu4_1", decoder_steps=2, batch_size=2, scale_size=96,
        crop_size=64, vgg_weights=str(vgg19_full), device="cpu", half=False,
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="stylecast.train"):
        tuned = load_checkpoint(train_arbitrary(config, progress=False))
    assert (
        "style taps ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1'] (moments), the style moved at relu3_1" in caplog.text
    )
    assert "encoder and decoder from arbitrary-relu3_1: no distillation" in caplog.text
    assert "error per tap" not in caplog.text
    shipped = load_checkpoint(model_path("arbitrary-relu3_1")).state_dict
    encoder = [k for k in shipped if k.startswith("encoder.")]
    decoder = [k for k in shipped if k.startswith("decoder.")]
    assert encoder and all(torch.equal(tuned.state_dict[k], shipped[k].float()) for k in encoder)
    assert any(not torch.allclose(tuned.state_dict[k], shipped[k].float()) for k in decoder)
    assert tuned.kwargs["deepest"] == "relu3_1" and tuned.contract.size_multiple == 4
    assert tuned.training["distill_steps"] == 0  # the record says what ran


def test_a_new_decoder_with_skips_takes_a_trained_models_encoder_as_it_is(tmp_path, trainset, vgg19_full, caplog):
    """--encoder-from: the relu4_1 encoder of a trained model, bit for bit; a decoder with skips
    trained from scratch; the checkpoint declares the skips and runs as any arbitrary model."""
    import logging

    from stylecast.core.images import read_rgb
    from stylecast.models.checkpoint import load_checkpoint
    from stylecast.realtime.stylizer import Stylizer
    from stylecast.training.arbitrary import ArbitraryConfig, train_arbitrary

    styles = trainset.parent / "media" / "styles"
    common = {
        "data": str(trainset), "styles": str(styles), "batch_size": 2, "scale_size": 96, "crop_size": 64,
        "vgg_weights": str(vgg19_full), "device": "cpu", "half": False, "lr": 1e-3,
    }  # fmt: skip
    first = train_arbitrary(
        ArbitraryConfig(out=str(tmp_path / "a.pt"), distill_steps=4, decoder_steps=1, **common), progress=False
    )
    config = ArbitraryConfig(
        out=str(tmp_path / "b.pt"), encoder_from=str(first), decoder_skips=("relu2_1", "relu3_1"), decoder_steps=8,
        checkpoint_every=4, **common,
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="stylecast.train"):
        second = load_checkpoint(train_arbitrary(config, progress=False))
    assert f"encoder from {first}: no distillation; a new decoder" in caplog.text
    assert "error per tap" not in caplog.text and second.training["distill_steps"] == 0
    before = load_checkpoint(first).state_dict
    assert all(torch.equal(second.state_dict[k], v) for k, v in before.items() if k.startswith("encoder."))
    joins = [v for k, v in second.state_dict.items() if k.startswith("decoder.skip.") and k.endswith("weight")]
    assert len(joins) == 2 and all(j.abs().sum() > 0 for j in joins)  # the skips learned from zero
    assert second.kwargs["skips"] == ["relu2_1", "relu3_1"] and second.contract.size_multiple == 8
    snapshot = load_checkpoint(tmp_path / "b.run" / "latest.pt")  # written with each resume state
    assert snapshot.training["steps_taken"] == 8 and snapshot.kwargs == second.kwargs
    assert all(torch.equal(snapshot.state_dict[k], v) for k, v in second.state_dict.items())
    frame = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    painting = read_rgb(styles / "the_scream.jpg")
    stylizer = Stylizer.create(str(tmp_path / "b.pt"), backend="torch", device="cpu", style_images=[(painting, 1.0)])
    assert stylizer.one(frame).shape == frame.shape


@pytest.mark.parametrize(
    ("init", "options"),
    [("arbitrary-relu3_1", {"width": 16}), ("arbitrary-relu3_1", {"deepest": "relu4_1"}), ("starry_night-small", {})],
)
def test_a_fine_tune_from_another_network_is_refused_before_anything_is_written(
    tmp_path, trainset, vgg19_full, init, options
):
    from stylecast.core.errors import InputError
    from stylecast.training.arbitrary import ArbitraryConfig, train_arbitrary

    config = ArbitraryConfig(
        data=str(trainset), styles=str(trainset.parent / "media" / "styles"), out=str(tmp_path / "a.pt"),
        init=init, **{"deepest": "relu3_1", **options}, vgg_weights=str(vgg19_full), device="cpu",
    )  # fmt: skip
    with pytest.raises(InputError, match=f"--init {init} is a .*, not the network being trained"):
        train_arbitrary(config, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_contradictory_or_impossible_arbitrary_settings_are_refused():
    from stylecast.core.errors import InputError
    from stylecast.training.arbitrary import ArbitraryConfig

    with pytest.raises(InputError, match="--style-to relu3_1 is shallower than --deepest relu4_1"):
        ArbitraryConfig(data=".", styles=".", out="a.pt", deepest="relu4_1", style_to="relu3_1")
    with pytest.raises(InputError, match="--forced-steps distils the encoder, which --init takes trained"):
        ArbitraryConfig(data=".", styles=".", out="a.pt", init="arbitrary", forced_steps=100)
    with pytest.raises(InputError, match="--forced-steps distils the encoder, which --encoder-from takes trained"):
        ArbitraryConfig(data=".", styles=".", out="a.pt", encoder_from="arbitrary", forced_steps=100)
    with pytest.raises(InputError, match="--init takes a model's encoder and decoder, --encoder-from its encoder"):
        ArbitraryConfig(data=".", styles=".", out="a.pt", init="arbitrary", encoder_from="arbitrary")
    with pytest.raises(InputError, match="--decoder-upsampling is a setting of the decoder with skips"):
        ArbitraryConfig(data=".", styles=".", out="a.pt", deepest="relu4_1", decoder_upsampling="bilinear")
    with pytest.raises(InputError, match="--decoder-skips relu4_1: choose among .* relu1_1, relu2_1, relu3_1$"):
        ArbitraryConfig(data=".", styles=".", out="a.pt", deepest="relu4_1", decoder_skips=("relu2_1", "relu4_1"))


def test_two_process_training_with_forced_steps_ends_with_the_same_weights_on_both_ranks(
    tmp_path, trainset, vgg_weights
):
    """torchrun with two processes (gloo): the forced distillation steps go around DDP and average
    their gradients by hand; the chained steps and the decoder's go through it. Each rank draws
    other crops, so only averaged gradients leave the two ranks with the same weights."""
    out = tmp_path / "a.pt"
    train_on_two_ranks(
        ["train", "arbitrary", "-q", "--data", str(trainset),
         "--styles", str(trainset.parent / "media" / "styles"), "--out", str(out), "--distill-steps", "4",
         "--forced-steps", "2", "--decoder-steps", "2", "--batch-size", "2", "--scale-size", "64", "--crop-size", "48",
         "--deepest", "relu3_1", "--vgg-weights", str(vgg_weights), "--device", "cpu", "--no-half"],
        out,
    )  # fmt: skip


def test_more_forced_than_distillation_steps_is_refused():
    from stylecast.core.errors import InputError
    from stylecast.training.arbitrary import ArbitraryConfig

    with pytest.raises(InputError, match="--forced-steps 10 is more than --distill-steps 5"):
        ArbitraryConfig(data=".", styles=".", out="a.pt", distill_steps=5, forced_steps=10)


def test_a_resumed_run_ends_with_the_weights_of_one_that_was_never_stopped(tmp_path, trainset, vgg_weights):
    # stopped after the first decoder step and resumed for two more, the run draws the photo and
    # painting crops of the three steps it took again, so it trains on what the straight run had
    from stylecast.models.checkpoint import load_checkpoint
    from stylecast.training.arbitrary import ArbitraryConfig, train_arbitrary

    def run(folder: str, decoder_steps: int) -> dict[str, torch.Tensor]:
        config = ArbitraryConfig(
            data=str(trainset), styles=str(trainset.parent / "media" / "styles"), out=str(tmp_path / folder / "a.pt"),
            distill_steps=2, decoder_steps=decoder_steps, batch_size=2, scale_size=96, crop_size=64,
            vgg_weights=str(vgg_weights), device="cpu", checkpoint_every=1, half=False, deepest="relu3_1",
            lr_final=0.2, content_space="encoder",
        )  # fmt: skip
        return load_checkpoint(train_arbitrary(config, progress=False)).state_dict

    straight = run("straight", decoder_steps=3)
    run("stopped", decoder_steps=1)
    resumed = run("stopped", decoder_steps=3)
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_dry_run_checks_both_phases_and_writes_nothing(tmp_path, trainset, vgg_weights, caplog):
    import logging

    from stylecast.training.arbitrary import ArbitraryConfig, train_arbitrary

    styles = trainset.parent / "media" / "styles"
    config = ArbitraryConfig(
        data=str(trainset), styles=str(styles), out=str(tmp_path / "a.pt"), distill_steps=500, decoder_steps=500,
        batch_size=2, scale_size=96, crop_size=64, vgg_weights=str(vgg_weights), device="cpu", dry_run=True,
        deepest="relu3_1",
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="stylecast.train"):
        assert train_arbitrary(config, progress=False) is None
    assert list(tmp_path.iterdir()) == []
    assert "dry run: 4 steps fine" in caplog.text and "1000 steps would take" in caplog.text


def test_the_paper_depth_with_weights_that_stop_at_relu3_4_says_what_it_needs(tmp_path, trainset, vgg_weights):
    from stylecast.core.errors import InputError
    from stylecast.training.arbitrary import ArbitraryConfig, train_arbitrary

    config = ArbitraryConfig(
        data=str(trainset), styles=str(trainset.parent / "media" / "styles"), out=str(tmp_path / "a.pt"),
        vgg_weights=str(vgg_weights), device="cpu",
    )  # fmt: skip
    with pytest.raises(InputError, match="lack relu4_1.*--deepest relu3_1"):
        train_arbitrary(config, progress=False)
    assert not (tmp_path / "a.pt").exists()
