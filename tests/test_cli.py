"""The command line on real files: results, --json, and one-line errors with exit code 2."""

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from conftest import assert_frames_in_order

from stylecast.cli.main import build_parser, main
from stylecast.core.images import read_rgb, write_rgb
from stylecast.models.checkpoint import Checkpoint, InputContract, save_checkpoint
from stylecast.models.small import SmallTransformerNet
from stylecast.models.zoo import DEFAULT_MODEL, SHIPPED
from stylecast.realtime.demo import DemoScene
from stylecast.realtime.video import VideoReader, VideoWriter

ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stylecast: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_models_json_lists_the_shipped_models(capsys):
    code, out, _ = run(capsys, "models", "--json")
    rows = json.loads(out)
    present = [name for name, entry in SHIPPED.items() if entry.path.is_file()]
    assert code == 0 and [row["name"] for row in rows] == present and DEFAULT_MODEL in present
    for row in rows:
        assert {"name", "family", "file_bytes", "styles", "parameters"} <= row.keys()
        assert row["file_bytes"] <= 30e6 and (row["styles"] or row["family"] == "arbitrary")  # it takes any
    assert sum(row["default"] for row in rows) == 1


def test_video_command_with_json(capsys, demo_clip, small_model, tmp_path):
    out_path = tmp_path / "styled.mp4"
    code, out, _ = run(
        capsys, "video", demo_clip, "-o", out_path, "--model", small_model, "--json", "-q", "--backend", "torch"
    )
    result = json.loads(out)
    assert code == 0 and result["frames"] == 30 and result["audio"] and result["width"] == 160
    with av.open(str(out_path)) as container:
        assert len(container.streams.audio) == 1
        assert sum(1 for _ in container.decode(video=0)) == 30
    # one model call at a time against three: the same frames in the same order, the threads given back
    threads = torch.get_num_threads()
    for workers in ("1", "3"):
        argv = ["video", demo_clip, "-o", tmp_path / f"w{workers}.mp4", "--model", small_model, "--backend", "torch"]
        assert run(capsys, *argv, "--workers", workers, "-q")[0] == 0 and torch.get_num_threads() == threads
    frames = []
    for name in ("w1.mp4", "w3.mp4"):
        with av.open(str(tmp_path / name)) as container:
            frames.append([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    one, three = frames
    assert len(one) == 30
    assert_frames_in_order(three, one, tolerance=3)


def test_image_command_handles_odd_gray_alpha_and_16bit(capsys, small_model, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(inputs / "odd.png"), rng.integers(0, 256, (59, 81, 3), dtype=np.uint8))
    cv2.imwrite(str(inputs / "gray.png"), rng.integers(0, 256, (40, 40), dtype=np.uint8))
    cv2.imwrite(str(inputs / "alpha.png"), rng.integers(0, 256, (40, 40, 4), dtype=np.uint8))
    cv2.imwrite(str(inputs / "deep.png"), rng.integers(0, 65536, (40, 40, 3), dtype=np.uint16))
    code, out, _ = run(capsys, "image", inputs, "-o", tmp_path / "out", "--model", small_model, "--json")
    images = json.loads(out)["images"]
    assert code == 0 and len(images) == 4
    odd = cv2.imread(str(tmp_path / "out" / "odd.png"))
    assert odd.shape == (59, 81, 3)


def test_strength_zero_returns_the_input(capsys, small_model, tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), image)
    code, _, _ = run(
        capsys, "image", tmp_path / "in.png", "-o", tmp_path / "out.png", "--model", small_model, "--strength", "0"
    )
    assert code == 0 and (cv2.imread(str(tmp_path / "out.png")) == image).all()


def photo_folder(folder: Path, *names: str) -> dict[str, bytes]:
    """Write a small random picture under each name; return each file's bytes."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(2)
    for name in names:
        cv2.imwrite(str(folder / name), rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    return {name: (folder / name).read_bytes() for name in names}


@pytest.mark.parametrize(
    "output",
    [
        lambda d: d / "a.png",  # the input itself
        lambda d: d / ".." / d.name / "a.png",  # through ..
        lambda d: d / "link.png",  # a symlink to it
        lambda d: d / "hard.png",  # a hard link to it
    ],
    ids=["same-name", "dotdot", "symlink", "hardlink"],
)
def test_image_never_writes_over_its_input(capsys, small_model, tmp_path, output):
    photos = tmp_path / "photos"
    before = photo_folder(photos, "a.png")
    (photos / "link.png").symlink_to(photos / "a.png")
    os.link(photos / "a.png", photos / "hard.png")
    code, _, err = run(capsys, "image", photos / "a.png", "-o", output(photos), "--model", small_model)
    assert_one_line_error(code, err, "would overwrite the input")
    assert (photos / "a.png").read_bytes() == before["a.png"]


def test_image_of_a_folder_into_itself_refuses_before_writing(capsys, small_model, tmp_path):
    photos = tmp_path / "photos"
    before = photo_folder(photos, "a.png", "b.jpg")
    code, _, err = run(capsys, "image", photos, "-o", photos, "--model", small_model)
    assert_one_line_error(code, err, "a.png would overwrite the input")
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before


def test_image_refuses_two_inputs_that_would_share_an_output(capsys, small_model, tmp_path):
    photos = tmp_path / "photos"
    photo_folder(photos, "x.jpg", "x.png")
    code, _, err = run(capsys, "image", photos, "-o", tmp_path / "out", "--model", small_model)
    assert_one_line_error(code, err, "x.jpg and", "x.png would both be written to")
    assert not list((tmp_path / "out").iterdir())


def test_video_refuses_an_output_linked_to_its_input(capsys, demo_clip, small_model, tmp_path):
    link = tmp_path / "link.mp4"
    link.symlink_to(demo_clip)
    before = demo_clip.read_bytes()
    code, _, err = run(capsys, "video", demo_clip, "-o", link, "--model", small_model)
    assert_one_line_error(code, err, "would overwrite the input")
    assert demo_clip.read_bytes() == before


def other_architecture_checkpoint(path: Path) -> Path:
    ckpt = Checkpoint(
        "johnson_small", {"width": 8}, SmallTransformerNet(width=16).state_dict(), InputContract(size_multiple=8)
    )
    save_checkpoint(ckpt, path)
    return path


@pytest.fixture
def bad(tmp_path):
    """Bad inputs, made on demand."""
    files = {
        "text.mp4": b"this is not a video",
        "empty.mp4": b"",
        "text.png": b"this is not an image",
        "empty.png": b"",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    cv2.imwrite(str(tmp_path / "tiny.png"), np.zeros((1, 1, 3), np.uint8))
    (tmp_path / "folder.onnx").mkdir()
    tiny = VideoWriter(tmp_path / "tiny.mp4", 6, 6, Fraction(10))
    for level in (0, 80, 160):
        tiny.write(np.full((6, 6, 3), level, np.uint8))
    tiny.close()
    single = VideoWriter(tmp_path / "one_frame.mp4", 64, 48, Fraction(10))
    single.write(np.full((48, 64, 3), 90, np.uint8))
    single.close()
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["video", "{d}/missing.mp4", "-o", "{d}/o.mp4"], ["video not found"]),
        (["video", "{d}/text.mp4", "-o", "{d}/o.mp4"], ["not a readable video"]),
        (["video", "{d}/empty.mp4", "-o", "{d}/o.mp4"], ["not a readable video"]),
        (["video", "{clip}", "-o", "{d}/nofolder/o.mp4"], ["output folder does not exist"]),
        (["video", "{clip}", "-o", "{d}/o.avi"], ["must end in one of"]),
        (["image", "{d}/text.png", "-o", "{d}/o.png"], ["not a readable image"]),
        (["image", "{d}/empty.png", "-o", "{d}/o.png"], ["empty"]),
        (["image", "{d}/tiny.png", "-o", "{d}/o.png"], ["1x1"]),
        (["image", "{d}/missing.png", "-o", "{d}/o.png"], ["image not found"]),
        (["image", "{clip}", "-o", "{d}/o.png"], ["not a readable image"]),
        (["video", "{clip}", "-o", "{d}/o.mp4", "--model", "no_such_style"], ["unknown model 'no_such_style'"]),
        (["video", "{clip}", "-o", "{d}/o.mp4", "--model", "{other}"], ["do not fit architecture"]),
        (["video", "{clip}", "-o", "{d}/o.mp4", "--model", "{d}/text.png"], ["not a readable checkpoint"]),
        (["video", "{clip}", "-o", "{d}/o.mp4", "--strength", "1.5"], ["--strength must be between 0 and 1"]),
        (["video", "{clip}", "-o", "{d}/o.mp4", "--backend", "tensorrt"], ["tensorrt"]),
        (["webcam", "--camera", "7", "--no-window", "--seconds", "1"], ["no camera at index 7"]),
        (
            ["webcam", "--source", "{d}/nothing.mp4", "--no-window"],
            ["is not 'demo', a camera index or an existing file"],
        ),
        (["demo", "--size", "10x10", "-o", "{d}/demo.mp4"], ["out of range"]),
        (["webcam", "--source", "demo", "--no-window", "--target-fps", "0"], ["--target-fps must be between"]),
        (["webcam", "--source", "demo", "--no-window", "--seconds", "-1"], ["--seconds must be positive"]),
        (["video", "{clip}", "-o", "{d}/o.mp4", "--batch-size", "0"], ["--batch-size must be between 1 and 64"]),
        (["video", "{clip}", "-o", "{d}/o.mp4", "--workers", "0"], ["--workers must be between 1 and 16"]),
        (["video", "{clip}", "-o", "{d}/o.mp4", "--model", "arbitrary"], ["give --style-image"]),
        (
            ["video", "{clip}", "-o", "{d}/o.mp4", "--model", "eight_paintings-small", "--style", "starry_night:nan"],
            ["style weights must be finite and not negative: 'starry_night:nan'"],
        ),
        (
            ["video", "{clip}", "-o", "{d}/o.mp4", "--model", "arbitrary", "--style-image", "{d}/text.png:inf"],
            ["style image weight must be positive and finite"],
        ),
        (["eval", "temporal", "{d}/tiny.mp4"], ["frames are 6x6; the optical flow needs at least 12"]),
        (["eval", "temporal", "{d}/one_frame.mp4"], ["one_frame.mp4: need at least two frames"]),
        (["export", "{small}", "--format", "onnx", "-o", "{d}/folder.onnx"], ["is a folder; give a file name"]),
        (["sheet", "-o", "{d}/sheet.png", "--models", "arbitrary"], ["give --style-image"]),
        (["sheet", "-o", "{d}/sheet.png", "--tile-height", "0"], ["--tile-height must be between 8 and 4096"]),
        (["sheet", "-o", "{d}/sheet.gif"], ["unknown image type '.gif'"]),
        (["sheet", "-o", "{d}/nofolder/sheet.png"], ["output folder does not exist"]),
        (["serve", "--model", "arbitrary", "--port", "0"], ["give --style-image"]),
        (["export", "{small}", "--format", "aot", "-o", "{d}/m.onnx"], ["--format aot writes a .pt2 file, not m.onnx"]),
        (
            ["train", "fast", "--style", "{d}/s.jpg", "--data", "{d}", "--out", "{d}/t.pt", "--steps", "0"],
            ["--steps must be at least 1"],
        ),
        (
            ["train", "fast", "--style", "{d}/s.jpg", "--data", "{d}", "--out", "{d}/t.pt", "--lr", "-1"],
            ["--lr must be positive"],
        ),
        (
            ["train", "fast", "--style", "{d}/s.jpg", "--data", "{d}", "--out", "{d}/t.pt", "--crop-size", "400"],
            ["--crop-size 400 is larger than --scale-size 320"],
        ),
        (
            ["train", "fast", "--style", "{d}/s.jpg", "--data", "{d}", "--out", "{d}/t.pt", "--seed", "-1"],
            ["--seed must be at least 0"],
        ),
        (
            ["train", "fast", "--style", "{d}/s.jpg", "--data", "{d}", "--out", "{d}/t.pt", "--seed", "4294967296"],
            ["--seed must be at most 4294967295"],
        ),
        (
            ["train", "fast", "--style", "{d}/s.jpg", "--data", "{d}", "--out", "{d}/folder.onnx"],
            ["is a folder; give a file name"],
        ),
        (
            ["train", "arbitrary", "--data", "{d}", "--styles", "{d}", "--out", "{d}/m.run"],
            ["m.run is the run folder's own name"],
        ),
        (
            ["train", "cyclegan", "--data-a", "{d}", "--data-b", "{d}", "--out", "{d}/nofolder/g.pt"],
            ["output folder does not exist"],
        ),
        (
            ["optimize", "--content", "{d}/c.jpg", "--styles", "{d}/s.jpg", "--out", "{d}/o.gif"],
            ["unknown image type '.gif'"],
        ),
        (
            ["train", "pix2pix", "--data", "{d}", "--out", "{d}/t.pt", "--batch-size", "0"],
            ["--batch-size must be at least 1"],
        ),
        (
            ["train", "arbitrary", "--data", "{d}", "--styles", "{d}", "--out", "{d}/t.pt", "--width", "0"],
            ["--width must be at least 1"],
        ),
        (
            ["optimize", "--content", "{d}/c.jpg", "--styles", "{d}/s.jpg", "--out", "{d}/o.png", "--size", "8"],
            ["--size must be at least 32"],
        ),
        (
            [
                "eval",
                "quality",
                "--models",
                "x",
                "--style",
                "{d}/s.jpg",
                "--content",
                "{d}",
                "--out",
                "{d}/q",
                "--gatys-steps",
                "0",
            ],
            ["--gatys-steps must be at least 1"],
        ),
        (
            ["eval", "quality", "--models", "x", "--style", "{d}/s.jpg", "--content", "{d}", "--out", "{d}/text.png"],
            ["--out", "is a file; the report needs a folder"],
        ),
        (["serve", "--style-image", "{d}/text.png", "--port", "0"], ["not a readable image"]),
        (["serve", "--threads", "0", "--port", "0"], ["--threads must be at least 1"]),
        (["serve", "--target-fps", "0"], ["--target-fps must be between"]),
        (["serve", "--max-peers", "0"], ["--max-peers must be at least 1"]),
        (["serve", "--max-room-size", "1"], ["--max-room-size must be at least 2"]),
        (["serve", "--max-frame-wait-ms", "-5"], ["--max-frame-wait-ms must be between"]),
        (["serve", "--port", "70000"], ["--port must be between 0 and 65535"]),
        (["serve", "--model", "{small}", "--host", "192.0.2.1", "--port", "0"], ["cannot listen on 192.0.2.1:0"]),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, list) and v and v[0] in ("video", "image", "webcam", "demo") else None,
)
def test_bad_input_gives_one_line_and_exit_2(capsys, bad, demo_clip, small_model, argv, fragments, monkeypatch):
    other = other_architecture_checkpoint(bad / "other.pt")
    argv = [a.format(d=bad, clip=demo_clip, other=other, small=small_model) for a in argv]
    if argv[0] in ("video", "image") and "--model" not in argv:
        argv += ["--model", small_model]
    before = set(bad.rglob("*"))
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *fragments)
    assert set(bad.rglob("*")) == before  # nothing half-written


@pytest.mark.parametrize(
    ("argv", "json", "quiet"),
    [
        ("eval --json temporal clip.mp4", True, False),
        ("eval temporal clip.mp4 --json", True, False),
        ("train -q --json fast --style s.jpg --data d --out o.pt", True, True),
        ("train fast --style s.jpg --data d --out o.pt --json -q", True, True),
        ("train fast --style s.jpg --data d --out o.pt", False, False),
        ("video clip.mp4 -o o.mp4 -q", False, True),
    ],
)
def test_json_and_quiet_count_before_or_after_a_nested_subcommand(argv, json, quiet):
    args = build_parser(argv.split()).parse_args(argv.split())
    assert (args.json, args.quiet) == (json, quiet)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ("train fast --style s.jpg --data d --out t.pt --lr nan", "argument --lr: not a finite number: 'nan'"),
        ("optimize --content c.jpg --styles s.jpg --out o.png --tv-weight inf", "argument --tv-weight: not a finite"),
        ("video clip.mp4 -o o.mp4 --strength nan", "argument --strength: not a finite number: 'nan'"),
        ("webcam --source demo --no-window --seconds inf", "argument --seconds: not a finite number: 'inf'"),
    ],
)
def test_nan_and_infinity_are_refused_where_the_flags_are_read(capsys, argv, message):
    """NaN passes every range check (each comparison is False) and would poison the losses."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv.split())
    assert exit_info.value.code == 2 and message in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_output_folder(capsys, demo_clip, small_model, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = run(capsys, "video", demo_clip, "-o", locked / "o.mp4", "--model", small_model)
    finally:
        locked.chmod(0o700)
    assert_one_line_error(code, err, "not writable")


def test_read_only_output_folder_as_root(capsys, demo_clip, small_model, tmp_path, monkeypatch):
    """As root the permission bits do not stop writes, so simulate what os.access reports."""
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    code, _, err = run(capsys, "video", demo_clip, "-o", tmp_path / "o.mp4", "--model", small_model)
    assert_one_line_error(code, err, "output folder is not writable")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_refuses_files_despite_os_access_is_one_line(
    capsys, demo_clip, small_model, tmp_path, monkeypatch
):
    """os.access says yes to root and on some network mounts; creating the staged file is the test."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    code, _, err = run(capsys, "video", demo_clip, "-o", tmp_path / "o.mp4", "--model", small_model)
    assert_one_line_error(code, err, f"cannot write in {tmp_path}: Permission denied")
    assert list(tmp_path.iterdir()) == []


def test_an_output_folder_that_cannot_be_made_is_one_line(capsys, small_model, tmp_path):
    write_rgb(tmp_path / "a.png", DemoScene(64, 48).frame(0))
    write_rgb(tmp_path / "b.png", DemoScene(64, 48).frame(9))
    code, _, err = run(capsys, "image", tmp_path / "a.png", tmp_path / "b.png", "-o", "/proc/stylecast-out")
    assert_one_line_error(code, err, "cannot make the output folder /proc/stylecast-out")


def test_a_full_disk_while_writing_is_one_line_and_leaves_nothing(capsys, small_model, tmp_path, monkeypatch):
    write_rgb(tmp_path / "in.png", DemoScene(64, 48).frame(0))
    out = tmp_path / "out"
    out.mkdir()

    def disk_full(self, data):
        raise OSError(28, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    code, _, err = run(capsys, "image", tmp_path / "in.png", "-o", out / "o.png", "--model", small_model)
    assert code == 1
    assert err.startswith("stylecast: error: No space left on device: ") and len(err.strip().splitlines()) == 1
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("argv", [["models"], ["models", "--json"], ["--help"]])
def test_a_closed_pipe_ends_quietly_with_exit_0(argv):
    """`stylecast models | head -1`: the reader goes away; no error line, exit 0, as Unix tools do."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "stylecast.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    proc.stdout.close()  # before anything is written
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0 and err == b""


def test_console_script_prints_no_traceback(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"garbage")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stylecast.cli",
            "video",
            str(tmp_path / "bad.mp4"),
            "-o",
            str(tmp_path / "o.mp4"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"stylecast: error: {tmp_path / 'bad.mp4'} is not a readable video (Invalid data found when processing input)"
    ]


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """20 s of the generated scene: long enough to be stopped halfway."""
    from stylecast.realtime.demo import write_demo_clip

    path = tmp_path_factory.mktemp("long") / "long.mp4"
    write_demo_clip(path, seconds=20.0, width=320, height=192, fps=30)
    return path


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])  # the second without torch (tests/test_torch_free.py)
@pytest.mark.parametrize(("signal_number", "code", "word"), [(2, 130, "interrupted"), (15, 143, "terminated")])
def test_a_signal_mid_video_exits_cleanly_and_leaves_no_file(
    tmp_path, long_clip, small_model, signal_number, code, word, backend
):
    """SIGINT (Ctrl-C) and SIGTERM halfway: the stages finish their frame, the temporary file goes,
    one line, exit 130 / 143 (SIGINT used to end in 'terminate called ...' and SIGABRT)."""
    import time

    from stylecast.export.onnx import cached_onnx
    from stylecast.realtime.stylizer import load_model

    cached_onnx(load_model(small_model), quiet=True)  # the export and the file's key in the session's cache
    out = tmp_path / "styled.mp4"
    argv = ["video", str(long_clip), "-o", str(out), "--model", small_model, "--backend", backend, "-q"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "stylecast.cli", *argv], stderr=subprocess.PIPE, text=True, cwd=ROOT
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".styled.*.part.mp4")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # frames are being stylized and written
    proc.send_signal(signal_number)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code and err.strip().splitlines() == [f"stylecast: {word}"], err
    assert list(tmp_path.iterdir()) == []


def test_temporary_files_of_processes_that_died_are_removed(tmp_path, demo_clip, small_model, capsys):
    import os

    dead = tmp_path / ".styled.999999999.k2j4.part.mp4"  # a pid no process has
    alive = tmp_path / f".styled.{os.getpid()}.x7q1.part.mp4"  # a write in progress elsewhere
    other = tmp_path / ".other.999999999.k2j4.part.mp4"  # another output's
    for path in (dead, alive, other):
        path.write_bytes(b"half a video")
    code, _, _ = run(capsys, "video", demo_clip, "-o", tmp_path / "styled.mp4", "--model", small_model, "-q")
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name, "styled.mp4"])


def test_run_webcam_entry_point_records_the_demo_source(tmp_path, small_model):
    proc = subprocess.run(
        [
            sys.executable,
            "run_webcam.py",
            "--source",
            "demo",
            "--no-window",
            "--seconds",
            "2",
            "--output",
            str(tmp_path / "live.mp4"),
            "--model",
            small_model,
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert stats["frames"] > 5
    with av.open(str(tmp_path / "live.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == stats["frames"]


def test_demo_command_writes_clip_and_preview(capsys, tmp_path, small_model):
    code, out, _ = run(
        capsys,
        "demo",
        "-o",
        tmp_path / "demo.mp4",
        "--seconds",
        "0.5",
        "--size",
        "128x72",
        "--model",
        small_model,
        "--json",
        "-q",
    )
    summary = json.loads(out)
    assert code == 0 and summary["frames"] == 15 and summary["audio"]
    preview = cv2.imread(str(tmp_path / "demo.png"))
    assert preview.shape == (3 * 72, 2 * 128, 3)
    left, right = preview[:, :128].astype(int), preview[:, 128:].astype(int)
    assert np.abs(left - right).mean() > 15  # the right column is stylized


def test_demo_command_records_the_camera_when_asked(capsys, tmp_path, small_model, demo_clip, monkeypatch):
    """`stylecast demo --camera N` through OpenCV's capture, a video file standing in for camera N."""
    open_capture = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture", lambda index: open_capture(str(demo_clip)))
    argv = ["demo", "--camera", "0", "-o", tmp_path / "demo.mp4", "--seconds", "0.5", "--model", small_model]
    code, out, _ = run(capsys, *argv, "--json", "-q")
    summary = json.loads(out)
    assert code == 0 and summary["frames"] == 15  # half a second of the 30 fps "camera"
    reader = VideoReader(tmp_path / "demo.mp4")
    assert reader.rate == 30 and (reader.width, reader.height) == (160, 96)
    reader.close()


def test_sheet_gives_an_arbitrary_style_model_a_column_per_picture(capsys, tmp_path):
    from stylecast.realtime.sheet import GAP

    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "photo.png"), rng.integers(0, 256, (96, 128, 3), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "calm.png"), np.full((64, 64, 3), (40, 90, 160), np.uint8))
    cv2.imwrite(str(tmp_path / "busy.png"), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    code, out, _ = run(
        capsys, "sheet", str(tmp_path / "photo.png"), "-o", str(tmp_path / "sheet.png"), "--models", "arbitrary",
        "--style-image", str(tmp_path / "calm.png"), "--style-image", str(tmp_path / "busy.png"),
        "--tile-height", "96", "--backend", "torch", "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["columns"] == ["arbitrary: calm", "arbitrary: busy"]
    sheet = cv2.imread(str(tmp_path / "sheet.png")).astype(int)[-96:]  # below the column labels
    assert sheet.shape == (96, 3 * 128 + 2 * GAP, 3)  # tiles --tile-height high
    calm, busy = sheet[:, 128 + GAP : 256 + GAP], sheet[:, 256 + 2 * GAP :]
    assert np.abs(calm - busy).mean() > 10  # each column its own picture's style


def test_help_shows_every_default(capsys):
    with pytest.raises(SystemExit) as info:
        main(["video", "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert "--preserve-color" in out and "--max-size" in out and "(default: 1.0)" in out


def test_train_flags_of_optional_lists_take_one_value_or_several():
    from stylecast.cli.common import config_from_args
    from stylecast.cli.main import build_parser
    from stylecast.training.fast import FastConfig

    base = ["train", "fast", "--data", "photos", "--out", "m.pt"]
    one = build_parser(base).parse_args([*base, "--style", "a.jpg", "--style-names", "night"])
    assert config_from_args(FastConfig, one).style_names == ("night",)
    two = build_parser(base).parse_args([*base, "--style", "a.jpg", "b.jpg", "--style-names", "night", "wave"])
    assert config_from_args(FastConfig, two).style_names == ("night", "wave")


def test_train_flags_without_a_default_value_take_their_annotated_type(capsys):
    """--margin (int | None) is a number, checked against its range (it was a string, and the range
    check failed with a traceback)."""
    from stylecast.cli.common import config_from_args
    from stylecast.cli.main import build_parser
    from stylecast.training.fast import FastConfig

    base = ["train", "fast", "--data", "photos", "--out", "m.pt", "--style", "a.jpg"]
    assert config_from_args(FastConfig, build_parser(base).parse_args([*base, "--margin", "24"])).margin == 24
    code, _, err = run(capsys, *base, "--margin", "-3")
    assert code == 2 and "--margin must be at least 0" in err


def test_eval_temporal_reports_the_models_error_next_to_the_inputs(capsys, demo_clip, small_model):
    code, out, _ = run(capsys, "eval", "temporal", demo_clip, "--model", small_model, "--max-frames", "8", "--json")
    result = json.loads(out)
    assert code == 0 and result["pairs"] == 7
    assert result["warping_error"] > result["input_warping_error"] > 0  # stylizing adds some flicker
    code, _, err = run(capsys, "eval", "temporal", demo_clip, "--model", small_model, "--max-frames", "1")
    assert_one_line_error(code, err, "--max-frames must be at least 2 (the error compares frame pairs)")


def test_serve_starts_answers_and_stops_on_ctrl_c(small_model):
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["serve", "--port", str(port), "--model", small_model, "--ice-local-only", "--backend", "torch"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "stylecast.cli", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/config", timeout=2) as response:
                    config = json.load(response)
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the server did not answer in 120 s"
                time.sleep(0.5)
        assert config["models"] == [small_model] and config["default_model"] == small_model
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"serving 1 model(s) at http://127.0.0.1:{port}/" in out


def test_export_onnx_writes_the_model_and_reports_its_agreement_with_torch(capsys, small_model, tmp_path):
    code, out, _ = run(capsys, "export", small_model, "--format", "onnx", "-o", tmp_path / "m.onnx", "--json")
    result = json.loads(out)
    assert code == 0 and (tmp_path / "m.onnx").stat().st_size > 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # nothing staged left behind
    assert len(result["max_abs_difference"]) == 2 and max(result["max_abs_difference"].values()) < 1e-3


def test_export_of_the_unet_translator_checks_it_at_sizes_it_takes(capsys, tmp_path):
    """colorize takes multiples of 128: the check after the export probes 128x128 and 384x640
    (it used to probe 64x96 and end in a traceback, leaving the file)."""
    code, out, _ = run(capsys, "export", "colorize", "--format", "onnx", "-o", tmp_path / "c.onnx", "--json")
    differences = json.loads(out)["max_abs_difference"]
    assert code == 0 and list(differences) == ["128x128", "384x640"] and max(differences.values()) < 1e-3


def test_an_export_that_fails_its_check_leaves_no_file(capsys, small_model, tmp_path, monkeypatch):
    import stylecast.export.check

    def broken(*args, **kwargs):
        raise RuntimeError("onnxruntime could not run the graph")

    monkeypatch.setattr(stylecast.export.check, "max_differences", broken)
    with pytest.raises(RuntimeError, match="could not run"):
        main(["export", small_model, "--format", "onnx", "-o", str(tmp_path / "m.onnx")])
    assert list(tmp_path.iterdir()) == []  # neither the output nor its staged file


def test_an_exported_onnx_file_is_a_model(capsys, tmp_path):
    """`--model m.onnx` reads the contract from the file's metadata and runs it with ONNX Runtime:
    a multi-style mix stylizes as the checkpoint does; other backends, damaged files and commands
    that need the weights say so in one line."""
    assert run(capsys, "export", "eight_paintings-small", "-o", tmp_path / "m.onnx")[0] == 0
    photo = np.random.default_rng(4).integers(0, 256, (72, 100, 3), dtype=np.uint8)
    write_rgb(tmp_path / "photo.png", photo)
    mix = ["--style", "great_wave:0.5,monet:0.5"]
    code, out, _ = run(capsys, "image", tmp_path / "photo.png", "-o", tmp_path / "a.png", "--model", tmp_path / "m.onnx", *mix, "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["backend"] == "onnxruntime"
    run(capsys, "image", tmp_path / "photo.png", "-o", tmp_path / "b.png", "--model", "eight_paintings-small", *mix, "--backend", "torch")  # fmt: skip
    assert np.abs(read_rgb(tmp_path / "a.png").astype(int) - read_rgb(tmp_path / "b.png")).max() <= 1

    (tmp_path / "damaged.onnx").write_bytes(b"not a model")
    for argv, fragment in (
        (
            [
                "image",
                tmp_path / "photo.png",
                "-o",
                tmp_path / "c.png",
                "--model",
                tmp_path / "m.onnx",
                "--backend",
                "torch",
            ],
            "runs on the onnxruntime backend, not torch",
        ),  # fmt: skip
        (
            ["image", tmp_path / "photo.png", "-o", tmp_path / "c.png", "--model", tmp_path / "damaged.onnx"],
            "damaged.onnx is not a readable exported model",
        ),  # fmt: skip
        (
            ["sheet", tmp_path / "photo.png", "-o", tmp_path / "s.png", "--models", tmp_path / "m.onnx"],
            "this command needs the checkpoint",
        ),  # fmt: skip
    ):
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "c.png").exists()


def test_a_style_image_alone_selects_the_shipped_arbitrary_style_model(capsys, tmp_path):
    photo = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    painting = np.zeros((64, 64, 3), np.uint8)
    painting[:, ::8] = (230, 40, 40)
    write_rgb(tmp_path / "photo.png", photo)
    write_rgb(tmp_path / "painting.png", painting)
    argv = ["image", tmp_path / "photo.png", "-o", tmp_path / "out.png", "--json", "--backend", "torch"]
    code, out, _ = run(capsys, *argv, "--style-image", tmp_path / "painting.png")
    assert code == 0 and json.loads(out)["model"] == "arbitrary"
    code, out, _ = run(capsys, *argv)
    assert code == 0 and json.loads(out)["model"] == DEFAULT_MODEL


def test_a_training_run_reports_its_checkpoint_once(tmp_path, trainset, vgg_weights):
    """The result line goes to stdout once; the log on stderr does not repeat it."""
    out = tmp_path / "m.pt"
    argv = ["train", "fast", "--style", trainset.parent / "media" / "styles" / "starry_night.jpg", "--data", trainset]
    argv += ["--out", out, "--net", "small_plain", "--steps", "2", "--batch-size", "1", "--scale-size", "64"]
    argv += ["--crop-size", "48", "--style-size", "64", "--loss-network", "vgg19", "--vgg-weights", vgg_weights, "-q"]
    proc = subprocess.run(
        [sys.executable, "-m", "stylecast.cli", *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote {out} (2 steps in ")
    assert str(out) not in proc.stderr


@pytest.mark.parametrize(
    ("argv", "flag", "values"),
    [
        (["train", "fast"], "--net", ["standard", "small_aa_eps_reflect", "multistyle"]),
        (["train", "fast"], "--loss-network", ["vgg16", "vgg19"]),
        (["train", "cyclegan"], "--gan", ["minimax", "lsgan", "wgangp"]),
        (["train", "arbitrary"], "--encoder", ["compact", "vgg"]),
        (["optimize"], "--preserve-color", ["none", "luminance", "match"]),
        (["eval", "quality"], "--lpips", ["vgg", "alex"]),
        (["video"], "--backend", ["auto", "torch", "onnxruntime"]),
        (["export"], "--format", ["onnx", "aot", "tensorrt"]),
    ],
)
def test_choice_flags_list_their_values_in_help_and_refuse_others(capsys, argv, flag, values):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    usage = capsys.readouterr().out
    assert info.value.code == 0
    listed = usage[usage.index(f"  {flag} {{") :].split("}", 1)[0]  # e.g. "  --net {standard,small,...}"
    assert all(value in listed.split("{", 1)[1].split(",") for value in values), listed
    with pytest.raises(SystemExit) as info:
        main([*argv, flag, "nonsense"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and f"argument {flag}: invalid choice: 'nonsense'" in err
    assert len(err.strip().splitlines()) == 1  # the error alone, not argparse's usage block above it


def test_colorize_says_once_that_a_colour_photos_colours_are_replaced(capsys, tmp_path):
    rng = np.random.default_rng(5)
    colour = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    grey = np.repeat(rng.integers(0, 256, (64, 96, 1), dtype=np.uint8), 3, axis=2)
    (tmp_path / "in").mkdir()
    for name, picture in (("a.png", grey), ("b.png", colour), ("c.png", colour)):
        write_rgb(tmp_path / "in" / name, picture)
    code, _, err = run(
        capsys, "image", tmp_path / "in", "-o", tmp_path / "out", "--model", "colorize", "--backend", "torch"
    )
    assert code == 0 and err.count("note:") == 1 and "b.png's own colours are replaced" in err
    code, _, err = run(
        capsys,
        "image",
        tmp_path / "in" / "a.png",
        "-o",
        tmp_path / "grey.png",
        "--model",
        "colorize",
        "--backend",
        "torch",
    )
    assert code == 0 and err == ""  # a grey picture has nothing to lose


def test_an_exported_model_treats_a_flat_frame_as_its_checkpoint_does(capsys, small_model, tmp_path):
    """The file carries the module's arguments, so the runtime knows the default's instance norms
    keep a flat frame flat themselves (and a standard net's need its flat answer)."""
    from stylecast.realtime.stylizer import Stylizer

    flat = np.full((64, 96, 3), 128, np.uint8)
    for model in (small_model, "starry_night"):
        assert run(capsys, "export", model, "-o", tmp_path / f"{model}.onnx")[0] == 0
        exported = Stylizer.create(str(tmp_path / f"{model}.onnx"))
        assert exported.answers_flat == Stylizer.create(model, "torch", "cpu").answers_flat == (model == "starry_night")
        assert np.abs(exported.one(flat).astype(int) - Stylizer.create(model, "torch", "cpu").one(flat)).max() <= 1
