"""The shipped stylizers' recipes are data (training/recipes/), fully written, and reproduce the
records their checkpoints carry; `stylecast train --recipe` runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_path

from stylecast.cli.main import main
from stylecast.models.zoo import SHIPPED
from stylecast.realtime.stylizer import load_model
from stylecast.training.recipe import RECIPES_DIR, recipe_names, recipe_stages

# the records before the nets were named by role (they lack the margin setting, added since) keep the
# names of their day: "small" was the plain small net, the default's "small_aa_eps_reflect"
RENAMED_NETS = {"small": "small_plain", "small_aa_eps_reflect": "small"}
# the records from before `arbitrary` was moved to relu4_1 name their teacher, the relu3_1 model, "arbitrary"
RENAMED_TEACHERS = {"arbitrary": "arbitrary-relu3_1"}
# where a run reads and writes, its machine and its logging: the command's, not the recipe's
PLACES = {"data", "data_a", "data_b", "style", "styles", "out", "run_dir", "vgg_weights", "device", "workers",
          "dry_run", "checkpoint_every", "log_every"}  # fmt: skip
# what a record holds that is not a setting: the places (a recipe's `init`, `encoder_from` and `lpips_weights` are
# paths there), and what the run found
NOT_SETTINGS = PLACES | {
    "lpips_weights",
    "init",
    "encoder_from",
    "device_used",
    "autocast_dtype",
    "rank_checksums",
    "style_layers_used",
}


def test_every_shipped_model_has_a_recipe():
    assert recipe_names() == sorted(SHIPPED)


@pytest.mark.parametrize("name", recipe_names())
def test_every_stage_writes_every_setting_of_its_trainer(name):
    """A recipe reads as what was run: no setting left to a default that may change (the places
    aside)."""
    from dataclasses import fields

    from stylecast.training.recipe import CONFIGS

    recipe = json.loads((RECIPES_DIR / f"{name}.json").read_text())
    settings = [f.name for f in fields(CONFIGS[recipe["trainer"]]) if f.name not in PLACES]
    assert all(list(stage) == settings for stage in recipe["stages"])


@pytest.mark.parametrize("name", recipe_names())
def test_a_recipe_reproduces_the_settings_its_shipped_model_was_trained_with(name, tmp_path):
    """The last stage's config, built from the recipe alone, equals the checkpoint's own record
    setting by setting (style layers: those the run used)."""
    styles = tmp_path / "styles"
    styles.mkdir()
    for painting in json.loads((RECIPES_DIR / f"{name}.json").read_text()).get("paintings", []):
        (styles / f"{painting}.jpg").write_bytes(b"")  # only their names are read here
    config = recipe_stages(name, "photos", str(styles), str(tmp_path / "m.pt"))[-1].config
    record = load_model(name).training
    for key, value in record.items():
        if key in NOT_SETTINGS or key not in config.__dataclass_fields__:
            continue
        expected = record.get("style_layers_used", value) if key == "style_layers" else value
        if key == "net" and "margin" not in record:  # a record from before the nets were named by role
            expected = RENAMED_NETS.get(expected, expected)
        if key == "teacher":
            expected = RENAMED_TEACHERS.get(expected, expected)
        got = getattr(config, key)
        assert (list(got) if isinstance(got, tuple) else got) == expected, key


def test_nets_are_named_by_role_and_the_old_name_of_the_defaults_is_accepted():
    from stylecast.training.fast import NETS, FastConfig

    assert {"standard", "small", "multistyle", "multistyle_small"} <= set(NETS)
    config = FastConfig(style=("a.jpg",), data="photos", out="m.pt", net="small_aa_eps_reflect")
    assert config.net == "small" and NETS["small"][2]["reflect_deep"] and SHIPPED["starry_night-small"].net == "small"


def test_the_default_recipe_has_five_stages_each_from_the_one_before(tmp_path):
    """Distilled from the relu3_1 arbitrary model given the painting, the painting's Gram matrices added at
    3 and then 30, and two last stages trained as the runtime runs it (its 32 px margin)."""
    styles = tmp_path / "styles"
    styles.mkdir()
    (styles / "starry_night.jpg").write_bytes(b"")
    stages = [s.config for s in recipe_stages("starry_night-small", "photos", str(styles), str(tmp_path / "m.pt"))]
    assert len(stages) == 5 and {s.teacher for s in stages} == {"arbitrary-relu3_1"}
    assert all(later.init == earlier.out for earlier, later in zip(stages[:-1], stages[1:], strict=True))
    assert stages[-1].out == str(tmp_path / "m.pt") and all(
        s.out.startswith(str(tmp_path / "m.pt.run")) for s in stages[:-1]
    )
    assert [s.teacher_style_weight for s in stages] == [0.0, 3.0, 30.0, 30.0, 30.0]
    assert [s.margin_in_training for s in stages] == [False, False, False, True, True] and stages[-1].margin == 32
    assert stages[-1].style_layers[-1] == "relu5_1"


def test_the_arbitrary_recipe_distils_its_encoder_then_trains_a_decoder_on_it(tmp_path):
    """Stage 1 distils the relu4_1 encoder (its one decoder step thrown away); stage 2 takes that
    encoder as it is and trains the skip decoder on the paper's AdaIN target; stage 3 fine-tunes
    that decoder at a stronger style weight."""
    styles = tmp_path / "styles"
    styles.mkdir()
    for painting in json.loads((RECIPES_DIR / "arbitrary.json").read_text())["paintings"]:
        (styles / f"{painting}.jpg").write_bytes(b"")
    stages = [s.config for s in recipe_stages("arbitrary", "photos", str(styles), str(tmp_path / "m.pt"))]
    first, second, third = stages
    assert first.distill_steps > first.forced_steps > 0 and {s.deepest for s in stages} == {"relu4_1"}
    assert second.encoder_from == first.out and second.distill_steps == 0 and second.init is None
    assert third.init == second.out and third.out == str(tmp_path / "m.pt")
    assert {s.content_space for s in stages[1:]} == {"vgg-adain"}
    assert {s.decoder_skips for s in stages[1:]} == {("relu2_1", "relu3_1")}
    assert third.style_weight > second.style_weight


def test_train_recipe_needs_its_paintings_and_its_flags(capsys, tmp_path):
    assert main(["train", "--recipe", "great_wave-small", "--data", str(tmp_path)]) == 2
    assert "--recipe needs --out" in capsys.readouterr().err
    assert (
        main(["train", "--recipe", "great_wave-small", "--data", str(tmp_path), "--out", str(tmp_path / "m.pt")]) == 2
    )
    assert "give --styles" in capsys.readouterr().err
    code = main(["train", "--recipe", "great_wave-small", "--data", str(tmp_path), "--styles", str(tmp_path), "--out", str(tmp_path / "m.pt")])  # fmt: skip
    assert code == 2 and "great_wave.jpg not found" in capsys.readouterr().err
    assert main(["train"]) == 2 and "name a METHOD" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["the_scream", "starry_night-small"])  # one stage, and five
def test_train_recipe_dry_run_trains_two_steps_and_writes_nothing(name, capsys, tmp_path, trainset, vgg_weights):
    styles = shared_path("media/styles")
    out = tmp_path / "m.pt"
    argv = ["train", "--recipe", name, "--data", str(trainset), "--styles", str(styles), "--out", str(out),
            "--vgg-weights", str(vgg_weights), "--dry-run", "-q"]  # fmt: skip
    assert main(argv) == 0
    assert not out.exists()


def test_a_cyclegan_recipe_makes_its_graded_domains_and_publishes_only_its_a_to_b_generator(tmp_path):
    from stylecast.training.recipe import Stage

    (stage,) = recipe_stages("teal_orange", "photos", None, str(tmp_path / "t.pt"))
    assert isinstance(stage, Stage) and stage.trainer == "cyclegan" and stage.grade == "teal_orange"
    assert stage.publish == tmp_path / "t.pt" and Path(stage.config.out).parent.parent == tmp_path / "t.pt.run"
    assert stage.config.data_b.endswith("domains/teal_orange") and stage.config.unet_upsample == "resize"


@pytest.mark.parametrize("name", ["colorize", "teal_orange"])
def test_translator_recipes_dry_run_on_a_few_photos(name, capsys, tmp_path):
    """The translators' recipes run end to end (two steps, nothing written): colorize's free
    pairs, teal_orange's graded domains made from the photos in the run folder."""
    import numpy as np

    from stylecast.core.images import write_rgb

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        write_rgb(photos / f"{i}.png", rng.integers(0, 256, (160, 200, 3), dtype=np.uint8))
    out = tmp_path / f"{name}.pt"
    assert main(["train", "--recipe", name, "--data", str(photos), "--out", str(out), "--dry-run", "-q"]) == 0
    assert not out.exists()
    if name == "teal_orange":
        domains = tmp_path / f"{name}.pt.run" / "domains"
        assert len(list((domains / "photos").iterdir())) == 3 and len(list((domains / name).glob("*.png"))) == 3
