"""Model cards: generated from each shipped checkpoint, its recipe and the eval reports."""

import json
from pathlib import Path

from test_cli import assert_one_line_error, run

ROOT = Path(__file__).parent.parent
CARDS = ROOT / "docs" / "cards"
REPORTS = sorted((ROOT / "benchmarks" / "results" / "model-cards").glob("*.json"))


def test_the_committed_cards_are_what_the_generator_writes_from_the_committed_reports(capsys, tmp_path):
    """docs/cards cannot go stale: regenerated from the committed reports they are identical, and
    every model a report scores shows that report's figures on its card, with no paths in it."""
    from stylecast.models.zoo import SHIPPED

    assert REPORTS, "benchmarks/results/model-cards holds the reports the cards are made from"
    code, out, _ = run(capsys, "eval", "cards", *REPORTS, "--out", tmp_path / "cards", "--json")
    assert code == 0 and len(json.loads(out)["cards"]) == len(SHIPPED)
    written = sorted(p.name for p in (tmp_path / "cards").iterdir())
    assert written == sorted([*(f"{name}.md" for name in SHIPPED), "README.md"])
    for name in written:
        assert (tmp_path / "cards" / name).read_text() == (CARDS / name).read_text(), f"docs/cards/{name} is stale"
    for path in REPORTS:
        report = json.loads(path.read_text())
        for model, scores in report.get("summary", {}).items():
            if model in SHIPPED:
                assert f"{scores['style_distance']:,.0f}" in (CARDS / f"{model}.md").read_text()
        if report.get("model") in SHIPPED and "warping_error" in report:
            card = (CARDS / f"{report['model']}.md").read_text()
            assert (
                f"| {report['pairs']} | {report['warping_error']:.5f} | {report['input_warping_error']:.5f} |" in card
            )
    for name in written:
        text = (CARDS / name).read_text()
        assert "../shared" not in text and "/work/" not in text and "/tmp/" not in text


def test_a_card_shows_the_model_its_recipe_and_a_fresh_flicker_report(capsys, tmp_path, demo_clip, small_model):
    code, out, _ = run(capsys, "eval", "temporal", demo_clip, "--model", small_model, "--max-frames", "6", "--json")
    assert code == 0
    (tmp_path / "t.json").write_text(out)
    result = json.loads(out)
    code, _, _ = run(capsys, "eval", "cards", tmp_path / "t.json", "--out", tmp_path / "cards", "--models", small_model)
    card = (tmp_path / "cards" / f"{small_model}.md").read_text()
    assert code == 0 and [p.name for p in (tmp_path / "cards").iterdir()] == [f"{small_model}.md"]
    assert card.startswith(f"# {small_model}\n") and "It is the default model." in card
    assert (
        f"| demo.mp4 | its painting | 5 | {result['warping_error']:.5f} | {result['input_warping_error']:.5f} |" in card
    )
    assert (
        f"stylecast train --recipe {small_model} " in card and "| teacher_style_weight | 0 | 3 | 30 | 30 | 30 |" in card
    )
    assert str(tmp_path) not in card  # the clip by its name only


def test_cards_refuse_what_is_not_a_report_or_a_model_in_one_line(capsys, tmp_path):
    (tmp_path / "other.json").write_text('{"hello": 1}')
    (tmp_path / "broken.json").write_text("{")
    code, _, err = run(capsys, "eval", "cards", tmp_path / "other.json", "--out", tmp_path / "cards")
    assert_one_line_error(code, err, "other.json: not a report of eval quality, eval temporal or eval translator")
    code, _, err = run(capsys, "eval", "cards", tmp_path / "broken.json", "--out", tmp_path / "cards")
    assert_one_line_error(code, err, "broken.json: not a readable JSON report")
    code, _, err = run(capsys, "eval", "cards", "--out", tmp_path / "cards", "--models", "nonesuch")
    assert_one_line_error(code, err, "not shipped models: nonesuch")
    assert not (tmp_path / "cards").exists()
