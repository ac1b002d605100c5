"""The installed distribution: one namespace, `stylecast`, and a light `import stylecast`."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_the_stylecast_package_and_nothing_else_at_top_level(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("stylecast-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        "stylecast",
        f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info",
    }
    for expected in ("stylecast/__init__.py", "stylecast/py.typed", "stylecast/models/zoo/starry_night-small.pt",
                     "stylecast/cli/main.py", "stylecast/core/images.py", "stylecast/server/static/index.html", "stylecast/training/fast.py", "stylecast/evaluation/quality.py", "stylecast/training/recipes/starry_night-small.json"):  # fmt: skip
        assert expected in names, expected


def test_import_stylecast_loads_no_torch():
    """`import stylecast` stays light: the API's names load their layers on first use."""
    code = "import sys, stylecast; print(sorted(m for m in ('torch', 'cv2', 'av') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    assert out.strip() == "[]"


def test_the_python_api_stylizes_a_frame():
    import numpy as np

    import stylecast

    stylizer = stylecast.Stylizer.create(stylecast.DEFAULT_MODEL, "torch", "cpu")
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    out = stylizer.one(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8 and np.abs(out.astype(int) - frame).mean() > 10


@pytest.mark.parametrize("argv", [["--help"], ["video", "--help"], ["image", "--help"], ["models", "--help"]])
def test_help_loads_no_torch(argv):
    """`stylecast --help` and a stylizing command's help build only their own parser: the help is
    printed and neither torch nor OpenCV was imported for it."""
    code = (
        "import sys\nfrom stylecast.cli.main import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'cv2', 'av', 'numpy') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True, timeout=120)
    assert "usage: stylecast" in run.stdout and run.stdout.strip().endswith("[]")


def test_every_command_in_the_table_builds_its_parser():
    """Each entry of the lazy command table names a module with its `add_` function."""
    from stylecast.cli.main import COMMANDS, build_parser

    for name in COMMANDS:
        parser = build_parser([name])
        help_text = parser._subparsers._group_actions[0].choices[name].format_help()  # type: ignore[union-attr]
        assert "--json" in help_text, name
