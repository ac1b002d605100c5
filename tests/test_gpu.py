"""The CUDA paths, against the CPU's torch fp32 as the reference (marked gpu: they run on a
machine with an NVIDIA GPU, `pytest -m gpu`, and skip elsewhere).

Tolerances are issue 5's, as a fraction of the output's range: fp32 within 1e-3, fp16 within
1e-2.
"""

import importlib.util

import numpy as np
import pytest
import torch

from stylecast.realtime.backends import AOTBackend, CompiledBackend, TorchBackend, create_backend
from stylecast.realtime.processing import FrameProcessor, StyleOptions
from stylecast.realtime.stylizer import Stylizer, load_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
CUDA = torch.device("cuda")
# one shipped model of each family, with the extra inputs it takes besides the image
FAMILIES = {
    "starry_night-small": [],
    "eight_paintings-small": [torch.tensor([[0.5, 0.5, 0, 0, 0, 0, 0, 0]])],
    "colorize": [],
}


def reference(name: str, x: torch.Tensor, conditions: list[torch.Tensor]) -> torch.Tensor:
    return TorchBackend(load_model(name), torch.device("cpu"), torch.float32)(x, *conditions)


def span(y: torch.Tensor) -> float:
    return float(y.max() - y.min())


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-3), (torch.float16, 1e-2)])
def test_torch_on_cuda_agrees_with_the_cpu(name, dtype, tolerance):
    x = torch.rand(2, 3, 128, 256, generator=torch.Generator().manual_seed(0))
    expected = reference(name, x, FAMILIES[name])
    actual = TorchBackend(load_model(name), CUDA, dtype)(x.to(CUDA, dtype), *FAMILIES[name]).float().cpu()
    assert float((actual - expected).abs().max()) <= tolerance * span(expected)


@pytest.mark.parametrize("backend_class", [CompiledBackend, AOTBackend])
def test_compiled_backends_agree_and_do_not_reuse_their_output(backend_class, tmp_path, monkeypatch):
    """CUDA graphs replay into one output buffer: a result must survive the next call."""
    monkeypatch.setenv("STYLECAST_CACHE", str(tmp_path))
    name = "starry_night-small"
    backend = backend_class(load_model(name), CUDA, torch.float16)
    first, second = (torch.rand(1, 3, 96, 160, generator=torch.Generator().manual_seed(s)) for s in (1, 2))
    y1 = backend(first.to(CUDA, torch.float16))
    for _ in range(3):  # warm-up and graph capture happen on the first calls
        backend(second.to(CUDA, torch.float16))
    expected = reference(name, first, [])
    assert float((y1.float().cpu() - expected).abs().max()) <= 1e-2 * span(expected)


def test_auto_on_cuda_and_the_pinned_upload_is_exact():
    backend = create_backend("auto", load_model("starry_night-small"), "cuda")
    assert backend.device.type == "cuda" and backend.dtype == torch.float16
    processor = FrameProcessor(load_model("starry_night-small").contract, CUDA, torch.float16, StyleOptions())
    frames = [np.random.default_rng(i).integers(0, 256, (72, 96, 3), dtype=np.uint8) for i in range(3)]
    for _ in range(2):  # the second batch reuses the pinned staging buffer
        uploaded = processor.upload(frames)
        pixels = processor.download(processor.from_model(uploaded, (0, 0, 72, 96), uploaded))
        assert all(np.array_equal(a, b) for a, b in zip(pixels, frames, strict=True))


def test_batched_frames_on_cuda_match_one_at_a_time():
    stylizer = Stylizer.create("starry_night-small", backend="torch", device="cuda")
    frames = [np.random.default_rng(i).integers(0, 256, (120, 160, 3), dtype=np.uint8) for i in range(4)]
    together = stylizer(frames)
    alone = [stylizer.one(frame) for frame in frames]
    for a, b in zip(together, alone, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # fp16 rounding, one level at most


@pytest.mark.skipif(importlib.util.find_spec("av") is None, reason="needs PyAV")
def test_nvdec_and_nvenc_run_the_file_pipeline(demo_clip, tmp_path):
    from stylecast.realtime.pipeline import process_video

    result = process_video(demo_clip, tmp_path / "out.mp4", lambda f: f, progress=False, hardware_codecs=True)
    assert result.frames == 30
    assert (result.decoder, result.encoder) == ("h264 (cuda)", "h264_nvenc")


def test_training_steps_on_cuda_lower_the_loss_in_mixed_precision(tmp_path, trainset, vgg_weights):
    from test_training import tiny_config  # the CPU training tests' config, made bigger for a GPU

    from stylecast.training.fast import train

    config = tiny_config(
        tmp_path,
        trainset,
        vgg_weights,
        net="standard",
        steps=30,
        batch_size=4,
        scale_size=160,
        crop_size=128,
        style_size=256,
        temporal_weight=3e7,
        device="cuda",
    )
    result = train(config, progress=False)
    totals = [sum(step.values()) for step in result.history]
    assert np.mean(totals[-5:]) < 0.7 * np.mean(totals[:5])
    assert load_model(str(result.checkpoint)).training["autocast_dtype"] in ("torch.bfloat16", "torch.float16")
