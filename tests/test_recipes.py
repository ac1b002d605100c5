"""The shipped stylizers' recipes are data (training/recipes/), fully written, and reproduce the
records their checkpoints carry; `stylecast train --recipe` runs them."""

from __future__ import annotations

import json

import pytest
from conftest import shared_path

from stylecast.cli.main import main
from stylecast.models.zoo import SHIPPED
from stylecast.realtime.stylizer import load_model
from stylecast.training.recipe import RECIPES_DIR, recipe_configs, recipe_names

# the records keep the net names of their day: "small" was the plain small net, the default's "small_aa_eps_reflect"
RENAMED_NETS = {"small": "small_plain", "small_aa_eps_reflect": "small"}
# what a record holds that is not a setting: where it ran, and what the run found
NOT_SETTINGS = {"style", "data", "out", "run_dir", "vgg_weights", "init", "device", "device_used", "autocast_dtype",
                "rank_checksums", "style_layers_used", "checkpoint_every", "log_every", "workers", "dry_run"}  # fmt: skip


def test_every_shipped_stylizer_has_a_recipe():
    stylizers = sorted(name for name, model in SHIPPED.items() if model.net not in ("arbitrary", "pix2pix", "cyclegan"))
    assert recipe_names() == stylizers


@pytest.mark.parametrize("name", recipe_names())
def test_a_recipe_reproduces_the_settings_its_shipped_model_was_trained_with(name, tmp_path):
    """The last stage's config, built from the recipe alone, equals the checkpoint's own record
    setting by setting (style layers: those the run used)."""
    styles = tmp_path / "styles"
    styles.mkdir()
    for painting in json.loads((RECIPES_DIR / f"{name}.json").read_text())["paintings"]:
        (styles / f"{painting}.jpg").write_bytes(b"")  # only their names are read here
    config = recipe_configs(name, "photos", str(styles), str(tmp_path / "m.pt"))[-1]
    record = load_model(name).training
    for key, value in record.items():
        if key in NOT_SETTINGS or key not in config.__dataclass_fields__:
            continue
        expected = record.get("style_layers_used", value) if key == "style_layers" else value
        expected = RENAMED_NETS.get(expected, expected) if key == "net" else expected
        got = getattr(config, key)
        assert (list(got) if isinstance(got, tuple) else got) == expected, key


def test_nets_are_named_by_role_and_the_old_name_of_the_defaults_is_accepted():
    from stylecast.training.fast import NETS, FastConfig

    assert {"standard", "small", "multistyle", "multistyle_small"} <= set(NETS)
    config = FastConfig(style=("a.jpg",), data="photos", out="m.pt", net="small_aa_eps_reflect")
    assert config.net == "small" and NETS["small"][2]["reflect_deep"] and SHIPPED["starry_night-small"].net == "small"


def test_the_default_recipe_has_two_stages_the_second_from_the_first(tmp_path):
    styles = tmp_path / "styles"
    styles.mkdir()
    (styles / "starry_night.jpg").write_bytes(b"")
    first, second = recipe_configs("starry_night-small", "photos", str(styles), str(tmp_path / "m.pt"))
    assert first.teacher == second.teacher == "starry_night" and second.init == first.out
    assert second.out == str(tmp_path / "m.pt") and first.out.startswith(str(tmp_path / "m.pt.run"))
    assert second.teacher_style_weight == 3.0 and second.style_layers[-1] == "relu5_1"


def test_train_recipe_needs_its_paintings_and_its_flags(capsys, tmp_path):
    assert main(["train", "--recipe", "great_wave-small", "--data", str(tmp_path)]) == 2
    assert "--recipe needs --styles, --out" in capsys.readouterr().err
    code = main(["train", "--recipe", "great_wave-small", "--data", str(tmp_path), "--styles", str(tmp_path), "--out", str(tmp_path / "m.pt")])  # fmt: skip
    assert code == 2 and "great_wave.jpg not found" in capsys.readouterr().err
    assert main(["train"]) == 2 and "name a METHOD" in capsys.readouterr().err


def test_train_recipe_dry_run_trains_two_steps_and_writes_nothing(capsys, tmp_path, trainset, vgg_weights):
    styles = shared_path("media/styles")
    out = tmp_path / "m.pt"
    argv = ["train", "--recipe", "great_wave-small", "--data", str(trainset), "--styles", str(styles), "--out", str(out),
            "--vgg-weights", str(vgg_weights), "--dry-run", "-q"]  # fmt: skip
    assert main(argv) == 0
    assert not out.exists()
