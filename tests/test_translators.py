"""GAN translators: shapes, receptive field, losses on hand-made inputs, and a known answer."""

import numpy as np
import pytest
import torch
from conftest import shared_path, train_on_two_ranks
from torch import nn

from stylecast.core.images import write_rgb
from stylecast.models.patchgan import PatchDiscriminator, receptive_field
from stylecast.models.resnet_generator import ResnetGenerator
from stylecast.models.unet_generator import UnetGenerator
from stylecast.realtime.demo import DemoScene
from stylecast.training.gan import AdversarialLoss, ImagePool, gradient_penalty, linear_decay


@pytest.mark.parametrize(
    ("generator", "good", "bad"),
    [
        (ResnetGenerator(width=8, blocks=2), (36, 44), (37, 44)),
        (UnetGenerator(depth=7, width=8), (128, 256), (96, 128)),
        (UnetGenerator(depth=8, width=8), (256, 256), (128, 256)),
        (UnetGenerator(depth=5, width=8, upsample="resize"), (32, 96), (48, 96)),
    ],
    ids=["resnet", "unet128", "unet256", "unet-resize"],
)
def test_generators_keep_size_for_multiples_and_refuse_the_rest(generator, good, bad):
    generator.eval()
    with torch.no_grad():
        y = generator(torch.rand(1, 3, *good) * 2 - 1)
        assert y.shape == (1, 3, *good) and y.abs().max() <= 1  # tanh: [-1, 1]
        with pytest.raises(ValueError, match=f"multiples of {generator.size_multiple}"):
            generator(torch.zeros(1, 3, *bad))


def test_patchgan_default_sees_70x70_patches():
    assert receptive_field(3) == 70
    # batch norm in eval mode is per-pixel affine (instance norm would mix the whole image in)
    d = PatchDiscriminator(3, width=8, layers=3, norm="batch").eval()
    x = torch.zeros(1, 3, 160, 160, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3)) > 0)
    cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 2)) > 0)
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70
    assert receptive_field(2) == 34 and receptive_field(4) == 142


def test_gan_losses_on_hand_made_scores():
    confident_real, confident_fake = torch.full((4, 1), 20.0), torch.full((4, 1), -20.0)
    minimax = AdversarialLoss("minimax")
    assert minimax.discriminator(confident_real, confident_fake) < 1e-6
    assert minimax.generator(confident_fake) > 10  # the generator is losing badly
    assert minimax.discriminator(torch.zeros(4, 1), torch.zeros(4, 1)) == pytest.approx(np.log(2), rel=1e-5)
    ls = AdversarialLoss("lsgan")
    assert ls.discriminator(torch.ones(2, 1), torch.zeros(2, 1)) == 0
    assert ls.discriminator(torch.zeros(2, 1), torch.ones(2, 1)) == pytest.approx(1.0)
    assert ls.generator(torch.full((2, 1), 0.5)) == pytest.approx(0.25)
    w = AdversarialLoss("wgangp")
    assert w.discriminator(torch.tensor([3.0]), torch.tensor([1.0])) == pytest.approx(-2.0)
    assert w.generator(torch.tensor([1.5])) == pytest.approx(-1.5)
    with pytest.raises(ValueError, match="GAN mode"):
        AdversarialLoss("hinge")


def test_gradient_penalty_is_zero_for_a_unit_slope_critic():
    class Linear(nn.Module):
        def __init__(self, norm):
            super().__init__()
            self.w = torch.randn(3 * 4 * 4)
            self.w = self.w / self.w.norm() * norm

        def forward(self, x):
            return x.flatten(1) @ self.w

    real, fake = torch.rand(5, 3, 4, 4), torch.rand(5, 3, 4, 4)
    assert gradient_penalty(Linear(1.0), real, fake) == pytest.approx(0.0, abs=1e-8)
    assert gradient_penalty(Linear(2.0), real, fake) == pytest.approx(1.0, rel=1e-4)


def test_image_pool_mixes_in_older_fakes():
    pool = ImagePool(size=4)
    first = torch.zeros(4, 3, 2, 2)
    assert torch.equal(pool(first), first)  # filling up: passed through
    later = [pool(torch.full((4, 3, 2, 2), float(i))) for i in range(1, 30)]
    values = torch.cat([batch[:, 0, 0, 0] for batch in later])
    assert (values < torch.arange(1, 30).repeat_interleave(4)).any()  # some came from the history
    assert ImagePool(size=0)(first) is first


def test_learning_rate_decays_linearly_in_the_second_half():
    assert [linear_decay(s, 100, 50) for s in (1, 50, 75, 100)] == [1.0, 1.0, 0.5, 0.0]


def write_frames(folder, frames):
    folder.mkdir()
    for i, frame in enumerate(frames):
        write_rgb(folder / f"{i:03d}.png", frame)
    return folder


MIX = np.array([[0.2, 0.3, 0.9], [0.1, 0.9, 0.2], [0.9, 0.2, 0.1]], np.float32)  # mostly a red/blue swap


def known_transform(rgb: np.ndarray) -> np.ndarray:
    """Domain B: a fixed channel mixing of domain-A-like photos."""
    return np.clip(rgb.astype(np.float32) @ MIX.T, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def domains(tmp_path_factory):
    """A and B from disjoint stretches of the generated scene; held-out A frames for testing."""
    root = tmp_path_factory.mktemp("domains")
    scene = DemoScene(96, 64)
    a = [scene.frame(i * 9) for i in range(40)]
    b = [known_transform(scene.frame(1000 + i * 9)) for i in range(40)]
    held_out = [scene.frame(2000 + i * 23) for i in range(8)]
    return write_frames(root / "a", a), write_frames(root / "b", b), held_out


def translation_error(checkpoint, frames):
    from stylecast.realtime.stylizer import Stylizer

    stylizer = Stylizer.create(str(checkpoint), backend="torch", device="cpu")
    model = [np.abs(stylizer.one(f).astype(float) - known_transform(f)).mean() for f in frames]
    identity = [np.abs(f.astype(float) - known_transform(f)).mean() for f in frames]
    return float(np.mean(model)), float(np.mean(identity))


def tiny(**overrides):
    from stylecast.training.translators import TranslatorConfig

    values = dict(
        width=8,
        resnet_blocks=2,
        unet_depth=5,
        batch_size=4,
        scale_size=64,
        crop_size=32,
        lr=2e-3,
        device="cpu",
        checkpoint_every=100,
        pool_size=10,
    )
    return TranslatorConfig(**(values | overrides))


def mean_colour(frames) -> np.ndarray:
    return np.stack(frames).reshape(-1, 3).astype(float).mean(axis=0)


@pytest.mark.slow
def test_cyclegan_moves_unpaired_images_to_the_other_domains_colours(domains, tmp_path):
    """Unpaired training only promises the other domain's distribution; at this size (300
    steps of a width-8 net) that shows in the colour statistics of held-out images, not yet in
    a pixel-exact mapping. The identity loss is off: it exists to resist colour changes.

    One such short GAN run follows a chaotic path: on a Zen 4 CPU with two threads seed 0 ended
    farther from B's colours than it began (29.6 against 26.6), seeds 1 and 2 at 9.5 and 9.3
    (on the Intel Xeon of earlier CI runs seed 0 had passed). So three seeds, and the median."""
    from stylecast.realtime.stylizer import Stylizer
    from stylecast.training.translators import train_cyclegan

    a, b, held_out = domains
    target = mean_colour([known_transform(f) for f in held_out])
    before = np.abs(mean_colour(held_out) - target).mean()  # about 27 of 255
    afters = []
    for seed in range(3):
        out = tmp_path / f"cg{seed}.pt"
        config = tiny(data_a=str(a), data_b=str(b), out=str(out), steps=300, identity_weight=0.0, seed=seed)
        train_cyclegan(config, progress=False)
        assert (tmp_path / f"cg{seed}-BtoA.pt").is_file()
        a_to_b = Stylizer.create(str(out), backend="torch", device="cpu")
        afters.append(np.abs(mean_colour([a_to_b.one(f) for f in held_out]) - target).mean())
    assert np.median(afters) < 0.5 * before, (afters, before)


@pytest.mark.slow
def test_cyclegan_with_unet_generators_maps_held_out_images_close_to_the_true_transform(domains, tmp_path):
    """With U-Net generators (the resize decoder, as shipped) the skips carry each pixel through,
    so unpaired training reaches the transform itself, pixel by pixel, not only its colours."""
    from stylecast.training.translators import train_cyclegan

    a, b, held_out = domains
    config = tiny(
        data_a=str(a),
        data_b=str(b),
        out=str(tmp_path / "cg.pt"),
        steps=300,
        identity_weight=0.0,
        generator="unet",
        unet_upsample="resize",
    )
    out = train_cyclegan(config, progress=False)
    error, baseline = translation_error(out, held_out)
    assert error < 0.5 * baseline, (error, baseline)


def test_pix2pix_learns_the_same_transform_from_pairs(domains, tmp_path):
    from stylecast.training.translators import train_pix2pix

    a, _, held_out = domains
    scene = DemoScene(96, 64)
    b_paired = write_frames(tmp_path / "b", [known_transform(scene.frame(i * 9)) for i in range(40)])
    out = train_pix2pix(
        tiny(data_a=str(a), data_b=str(b_paired), out=str(tmp_path / "p2p.pt"), steps=200), progress=False
    )
    error, baseline = translation_error(out, held_out)
    assert error < 0.3 * baseline, (error, baseline)


def test_free_pairs_train_and_run_with_the_same_input_transform(tmp_path, domains):
    from stylecast.models.checkpoint import load_checkpoint
    from stylecast.training.translators import train_pix2pix

    a, _, held_out = domains
    out = train_pix2pix(
        tiny(data=str(a), pairs="edges", out=str(tmp_path / "edges.pt"), steps=30, gan="minimax"), progress=False
    )
    ckpt = load_checkpoint(out)
    assert ckpt.contract.transform == "edges" and ckpt.contract.range == (-1.0, 1.0) and ckpt.family == "translator"
    from stylecast.realtime.stylizer import Stylizer

    assert Stylizer.create(str(out), backend="torch", device="cpu").one(held_out[0]).shape == held_out[0].shape


def test_command_line_trains_a_free_pair_translator_and_stylizes_an_image_with_it(domains, tmp_path, capsys):
    import json

    from stylecast.cli.main import main

    a, _, held_out = domains
    ckpt = tmp_path / "gray2photo.pt"
    argv = ["train", "--json", "-q", "pix2pix", "--data", a, "--pairs", "grayscale", "--out", ckpt, "--steps", "3"]
    argv += ["--width", "8", "--unet-depth", "5", "--scale-size", "40", "--crop-size", "32", "--device", "cpu"]
    assert main([str(v) for v in argv]) == 0
    assert json.loads(capsys.readouterr().out)["checkpoint"] == str(ckpt)
    photo = tmp_path / "photo.png"
    write_rgb(photo, held_out[0])
    assert main(["image", str(photo), "-o", str(tmp_path / "out.png"), "--model", str(ckpt), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (tmp_path / "out.png").is_file() and result

    # scored against the photo it was made from; the baseline is the grayscale input itself
    photos = write_frames(tmp_path / "held_out", held_out)
    assert main(["eval", "translator", str(photos), "--model", str(ckpt), "--size", "96", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    luma = np.stack(held_out).astype(float) @ [0.299, 0.587, 0.114]
    expected = np.abs(np.stack(held_out) - np.round(luma)[..., None]).mean() / 255
    assert report["photos"] == len(held_out) and report["target"] == "photo"
    assert report["baseline"]["l1"] == pytest.approx(expected, abs=2e-3)
    assert 0 < report["scores"]["l1"] < 1 and -1 <= report["scores"]["ssim"] <= 1


def test_translator_eval_scores_a_colour_grade_and_refuses_a_model_without_a_target(domains, tmp_path, capsys):
    import json

    from stylecast.cli.main import main
    from stylecast.training.grades import teal_orange

    _, _, held_out = domains
    photos = write_frames(tmp_path / "held_out", held_out)
    argv = ["eval", "translator", str(photos), "--model", "starry_night-small", "--size", "96"]
    assert main([*argv, "--grade", "teal_orange", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = np.mean([np.abs(f.astype(float) - teal_orange(f)).mean() / 255 for f in held_out])
    assert report["target"] == "teal_orange" and report["baseline"]["l1"] == pytest.approx(expected, abs=1e-6)
    assert report["scores"]["l1"] > report["baseline"]["l1"]  # a painting is no colour grade
    assert main(argv) == 2
    assert "has no known target" in capsys.readouterr().err
    assert main([*argv, "--grade", "sepia"]) == 2


@pytest.mark.parametrize(("model", "target"), [("colorize", []), ("teal_orange", ["--grade", "teal_orange"])])
def test_shipped_translators_come_closer_to_their_target_than_the_input(model, target, capsys):
    """The 12 content photos were never in the training set."""
    import json

    from stylecast.cli.main import main

    photos = shared_path("media/content")
    assert main(["eval", "translator", str(photos), "--model", model, "--size", "256", *target, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["photos"] == 12 and report["target"] == (target[-1] if target else "photo")
    assert report["scores"]["l1"] < report["baseline"]["l1"]


def test_video_command_runs_a_shipped_translator_and_keeps_frames_and_audio(demo_clip, tmp_path, capsys):
    import json

    import av

    from stylecast.cli.main import main

    out = tmp_path / "graded.mp4"
    assert main(["video", str(demo_clip), "-o", str(out), "--model", "teal_orange", "--json", "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["frames"] == 30 and result["audio"]
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 1
        assert sum(1 for _ in container.decode(video=0)) == 30


def test_teal_orange_grade_tints_shadows_teal_and_highlights_orange():
    from stylecast.training.grades import teal_orange

    shadow = teal_orange(np.full((2, 2, 3), 40, np.uint8))[0, 0]
    light = teal_orange(np.full((2, 2, 3), 215, np.uint8))[0, 0]
    assert shadow[2] > shadow[0] and shadow[1] > shadow[0]  # blue-green over red
    assert light[0] > light[1] > light[2]  # red over green over blue


def test_two_process_ddp_pix2pix_on_cpu(domains, tmp_path):
    """torchrun with two processes (gloo): both ranks end with the same generator (the
    discriminator's and generator's gradients averaged across ranks); rank 0 writes."""
    a, _, _ = domains
    out = tmp_path / "ddp.pt"
    train_on_two_ranks(
        ["train", "-q", "pix2pix", "--data", str(a), "--pairs", "grayscale",
         "--out", str(out), "--steps", "3", "--batch-size", "2", "--width", "8", "--unet-depth", "5",
         "--scale-size", "40", "--crop-size", "32", "--device", "cpu", "--checkpoint-every", "2"],
        out,
    )  # fmt: skip
    assert list((tmp_path / "ddp.run").glob("samples_*.png"))  # rank 0 wrote the sample grid


def test_dry_run_takes_two_steps_and_writes_nothing(domains, tmp_path, caplog):
    import logging

    from stylecast.training.translators import train_pix2pix

    a, _, _ = domains
    with caplog.at_level(logging.INFO, logger="stylecast.train"):
        out = train_pix2pix(
            tiny(data=str(a), pairs="edges", out=str(tmp_path / "m.pt"), steps=500, dry_run=True), progress=False
        )
    assert out is None and list(tmp_path.iterdir()) == []
    assert "dry run: 2 steps fine" in caplog.text


def test_rejected_setups_leave_no_run_folder(domains, tmp_path):
    from stylecast.core.errors import InputError
    from stylecast.training.translators import train_cyclegan, train_pix2pix

    a, _, _ = domains
    out = tmp_path / "out" / "m.pt"
    out.parent.mkdir()
    with pytest.raises(InputError, match="training data folder not found"):
        train_pix2pix(tiny(data=str(tmp_path / "missing"), out=str(out), steps=2), progress=False)
    with pytest.raises(InputError, match="must be a multiple of 32"):
        train_pix2pix(tiny(data=str(a), out=str(out), steps=2, crop_size=40), progress=False)
    with pytest.raises(InputError, match="--generator 'vae': choose one of unet, resnet"):
        train_cyclegan(tiny(data_a=str(a), data_b=str(a), out=str(out), steps=2, generator="vae"), progress=False)
    with pytest.raises(InputError, match="--unet-upsample 'bilinear': choose one of transpose, resize"):
        train_pix2pix(tiny(data=str(a), out=str(out), steps=2, unet_upsample="bilinear"), progress=False)
    assert list(out.parent.iterdir()) == []
