"""Is int8 worth it on this CPU? The small net's ONNX model in fp32 next to its int8 quantization
(ONNX Runtime static QDQ, per-channel int8 convolution weights, uint8 activations calibrated on
real photos), in one run: milliseconds per call and how far the picture moves (PSNR against fp32).

    python benchmarks/cpu_quantization.py [--model starry_night-small] [--size 640x360] [--repeat 10]

Needs the content photos in ../shared/media/content (the first four calibrate, the rest are
compared). fp16 is not measured: ONNX Runtime's CPU provider has no fp16 convolution kernels on
a CPU without AVX512-FP16, so it would only add casts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
from cpu_models import median_ms  # beside this script

from stylecast.core.images import read_rgb
from stylecast.core.machine import cpu_name
from stylecast.export.onnx import cached_onnx
from stylecast.realtime.processing import FrameProcessor, StyleOptions
from stylecast.realtime.stylizer import load_model

CALIBRATION_PHOTOS = 4


def model_input(path: Path, size: tuple[int, int], processor: FrameProcessor) -> np.ndarray:
    """A photo as the network's 1 x 3 x H x W input, prepared by the frame path itself."""
    rgb = cv2.resize(read_rgb(path), size, interpolation=cv2.INTER_AREA)
    x, _ = processor.to_model(processor.upload([rgb]))
    return x.numpy()


def quantize(fp32: Path, target: Path, calibration: list[np.ndarray]) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Photos(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter({"input": x} for x in calibration)

        def get_next(self):
            return next(self.feeds, None)

    prepared = target.with_suffix(".pre.onnx")
    here = os.getcwd()
    os.chdir(target.parent)  # the quantizer writes scratch files into the current folder
    try:
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)  # H and W are dynamic
        quantize_static(
            str(prepared),
            str(target),
            Photos(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["Conv"],  # instance norm and the upsampling stay in float
        )
    finally:
        os.chdir(here)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def main() -> None:
    import onnxruntime as ort

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="starry_night-small")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--photos", type=Path, default=Path(__file__).resolve().parents[2] / "shared/media/content")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    ckpt = load_model(args.model)
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if len(photos) <= CALIBRATION_PHOTOS:
        raise SystemExit(f"need more than {CALIBRATION_PHOTOS} photos in {args.photos}")
    processor = FrameProcessor(ckpt.contract, torch.device("cpu"), torch.float32, StyleOptions())
    inputs = [model_input(p, size, processor) for p in photos]

    with tempfile.TemporaryDirectory() as tmp:
        int8 = Path(tmp) / "int8.onnx"
        quantize(cached_onnx(ckpt), int8, inputs[:CALIBRATION_PHOTOS])
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sessions = {
            name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            for name, path in (("fp32", cached_onnx(ckpt)), ("int8", int8))
        }
        lo, hi = ckpt.contract.output_range

        def picture(session, x: np.ndarray) -> np.ndarray:
            return np.clip((session.run(None, {"input": x})[0] - lo) / (hi - lo), 0.0, 1.0)

        compared = inputs[CALIBRATION_PHOTOS:]
        psnrs = [psnr(picture(sessions["fp32"], x), picture(sessions["int8"], x)) for x in compared]
        ms = {}
        for _ in range(2):  # interleaved rounds, so a slow moment does not favour one side
            for name, session in sessions.items():
                ms.setdefault(name, []).append(
                    median_ms(lambda s=session: s.run(None, {"input": inputs[0]}), args.repeat)
                )

    print(f"# {cpu_name()}, onnxruntime {ort.__version__}, {args.model} at {args.size}")
    for name in sessions:
        print(f"{name:5s} {min(ms[name]):7.1f} ms per call")
    print(f"int8 / fp32 time: {min(ms['int8']) / min(ms['fp32']):.2f}")
    print(f"int8 vs fp32 picture on {len(compared)} held-out photos: PSNR {min(psnrs):.1f} to {max(psnrs):.1f} dB")


if __name__ == "__main__":
    main()
