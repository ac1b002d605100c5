"""The torch-free ONNX Runtime path for files: the same pixels as the Stylizer, taken only where
its rules allow, and a `stylecast video` that never imports torch."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import av
import numpy as np
import pytest
import torch

from stylecast.core.machine import default_threads
from stylecast.export.onnx import cached_onnx, export_onnx, model_key
from stylecast.models.checkpoint import InputContract
from stylecast.realtime.backend_choices import choice_key, choice_prefix, remember_choice
from stylecast.realtime.backends import OnnxRuntimeBackend
from stylecast.realtime.processing import StyleOptions
from stylecast.realtime.stylizer import Stylizer, load_model
from stylecast.realtime.torch_free import OnnxFrames, model_input_size, onnx_without_torch
from tests.conftest import ROOT, assert_frames_in_order


def frames_of(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.mark.parametrize(
    "contract",
    [
        None,  # the default's own: RGB 0..1, margin 8, multiple 8
        InputContract(range=(-1.0, 1.0), channel_order="BGR", size_multiple=16, margin=3, output_range=(-2.0, 2.0)),
    ],
)
@pytest.mark.parametrize("size", [(37, 61), (6, 9)])  # odd sizes; 6 x 9 is padded by replication
def test_onnx_frames_give_the_stylizers_pixels(small_model, contract, size, tmp_path, monkeypatch, rng):
    monkeypatch.setenv("STYLECAST_CACHE", str(tmp_path))
    ckpt = load_model(small_model)
    if contract is not None:  # the same weights fed another way: each conversion step is exercised
        ckpt = dataclasses.replace(ckpt, contract=contract)
    path = export_onnx(ckpt, tmp_path / "model.onnx")
    frames = [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(2)]
    for strength in (1.0, 0.6):
        stylizer = Stylizer(ckpt, OnnxRuntimeBackend(path, torch.device("cpu")), StyleOptions(strength=strength))
        expected = stylizer(frames)
        actual = OnnxFrames(path, threads=1, strength=strength)(frames)
        assert [a.shape for a in actual] == [f.shape for f in frames]
        difference = max(np.abs(a.astype(int) - e.astype(int)).max() for a, e in zip(actual, expected, strict=True))
        assert difference <= 1, difference  # float rounding at most
        assert np.abs(actual[0].astype(int) - frames[0].astype(int)).mean() > 5  # stylized, not passed through


def test_taken_only_where_onnx_runtime_would_run_and_nothing_needs_torch(small_model, tmp_path, monkeypatch):
    monkeypatch.setenv("STYLECAST_CACHE", str(tmp_path))
    size = (96, 160)

    def path_for(model: str = small_model, backend: str = "auto", **options) -> OnnxFrames | None:
        return onnx_without_torch(model, backend, options.pop("device", "cpu"), size, threads=1, **options)

    assert path_for(backend="onnxruntime") is None  # never loaded: no key for the file yet
    ckpt = load_model(small_model)  # records the file's key
    assert path_for(backend="onnxruntime") is None  # no export in the cache yet
    cached_onnx(ckpt, quiet=True)
    assert isinstance(path_for(backend="onnxruntime"), OnnxFrames)
    assert path_for(backend="auto") is None  # auto: no run has chosen ONNX Runtime at this size
    frames = path_for(backend="onnxruntime")
    assert frames is not None
    key = choice_key(choice_prefix(model_key(ckpt), 1), model_input_size(frames.contract, *size))
    remember_choice(key, "torch", {"torch": 1.0, "onnxruntime": 2.0})
    assert path_for(backend="auto") is None
    remember_choice(key, "onnxruntime", {"torch": 2.0, "onnxruntime": 1.0})
    assert isinstance(path_for(backend="auto"), OnnxFrames)
    # what needs torch goes through it
    assert path_for(backend="torch") is None
    assert path_for(reduced=True) is None and path_for(preserve_color=True) is None
    assert path_for(device="cuda") is None
    assert path_for(model="no-such-model") is None
    standard = load_model("starry_night")  # answers flat frames itself: a torch step
    cached_onnx(standard, quiet=True)
    assert path_for(model="starry_night", backend="onnxruntime") is None
    exported = export_onnx(ckpt, tmp_path / "given.onnx")
    assert isinstance(path_for(model=str(exported)), OnnxFrames)  # an exported file runs on ONNX Runtime anyway


def test_video_without_torch_after_a_run_exported_the_model(demo_clip, small_model, tmp_path):
    """The first run loads the checkpoint through torch and exports it; the second never imports
    torch and writes the same frames, audio and timing."""
    env = {"STYLECAST_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    script = (
        "import json, sys\n"
        "from stylecast.cli.main import main\n"
        "code = main(sys.argv[1:])\n"
        "print(json.dumps({'code': code, 'torch_imported': 'torch' in sys.modules}))\n"
    )

    def video(name: str) -> dict:
        argv = ["video", str(demo_clip), "-o", str(tmp_path / name), "--model", small_model]
        proc = subprocess.run(
            [sys.executable, "-c", script, *argv, "--backend", "onnxruntime", "--json", "-q"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        *result, imports = proc.stdout.strip().splitlines()
        return json.loads("\n".join(result)) | json.loads(imports)

    first, second = video("first.mp4"), video("second.mp4")
    assert first["code"] == 0 and first["torch"] and first["torch_imported"]
    assert second["code"] == 0 and not second["torch"] and not second["torch_imported"]
    assert second["frames"] == first["frames"] == 30 and second["audio"]
    assert_frames_in_order(frames_of(tmp_path / "second.mp4"), frames_of(tmp_path / "first.mp4"), tolerance=1)
    with av.open(str(tmp_path / "first.mp4")) as a, av.open(str(tmp_path / "second.mp4")) as b:
        times = [[f.pts for f in c.decode(video=0)] for c in (a, b)]
    assert times[0] == times[1]


def test_default_threads_is_torchs(monkeypatch):
    """The torch-free path keys its remembered choices by the thread count torch would start with."""
    code = "import torch; print(torch.get_num_threads())"
    for omp in (None, "1"):
        env = {"PATH": "/usr/bin:/bin"} | ({"OMP_NUM_THREADS": omp} if omp else {})
        torch_threads = int(
            subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout
        )
        if omp:
            monkeypatch.setenv("OMP_NUM_THREADS", omp)
        else:
            monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert default_threads() == torch_threads
