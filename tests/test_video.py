"""The file pipeline on real encoded files: frames, order, timing and audio are kept."""

from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from conftest import assert_frames_in_order

from stylecast.core.errors import InputError
from stylecast.realtime.pipeline import process_video
from stylecast.realtime.video import Frame, VideoReader, VideoWriter


def probe(path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        frames = [(f.pts, f.time, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
        info = {
            "size": (video.codec_context.width, video.codec_context.height),
            "rate": video.average_rate,
            "audio_codec": audio.codec_context.name if audio else None,
            "audio_rate": audio.codec_context.sample_rate if audio else None,
        }
    with av.open(str(path)) as container:
        audio_packets = sum(1 for p in container.demux(audio=0) if p.size) if info["audio_codec"] else 0
    return info, frames, audio_packets


@pytest.mark.parametrize("hardware", [False, True], ids=["cpu-codecs", "hardware-codecs"])
def test_identity_pipeline_keeps_frames_timing_and_audio(demo_clip, tmp_path, hardware):
    out = tmp_path / "copy.mp4"
    result = process_video(demo_clip, out, lambda frames: frames, progress=False, hardware_codecs=hardware)
    if not hardware or not torch.cuda.is_available():  # asked for NVDEC/NVENC without a GPU: the CPU's
        assert (result.decoder, result.encoder) == ("h264", "libx264")
    src_info, src_frames, src_audio = probe(demo_clip)
    out_info, out_frames, out_audio = probe(out)
    assert result.frames == len(src_frames) == len(out_frames) == 30
    assert out_info == src_info and out_info["audio_codec"] == "aac"
    assert out_audio == src_audio > 0
    assert [t for _, t, _ in out_frames] == pytest.approx([t for _, t, _ in src_frames], abs=1e-3)
    # re-encoding at high quality keeps every frame close to its source, in the same order
    errors = [
        np.abs(a.astype(int) - b.astype(int)).mean()
        for (_, _, a), (_, _, b) in zip(src_frames, out_frames, strict=True)
    ]
    assert max(errors) < 4
    assert [p.name for p in tmp_path.iterdir()] == ["copy.mp4"]


def test_frames_arrive_in_order_with_batches(demo_clip, tmp_path):
    """Each frame is replaced by a flat image encoding its index: the output must count up."""
    seen = []

    def stamp(frames):
        out = []
        for frame in frames:
            seen.append(frame)
            out.append(np.full_like(frame, (len(seen) * 8) % 256))
        return out

    process_video(demo_clip, tmp_path / "o.mkv", stamp, batch_size=4, progress=False)
    _, frames, _ = probe(tmp_path / "o.mkv")
    levels = [int(round(f.mean() / 8)) for _, _, f in frames]  # YUV rounding moves a level by ~1
    assert levels == list(range(1, 31))


def test_several_workers_finish_out_of_order_and_the_file_keeps_order_timing_and_audio(demo_clip, tmp_path):
    """Three workers, each call sleeping a random while (later frames often finish first): the
    output is the one-worker output, frame for frame, with the same times and audio."""
    import random
    import threading
    import time

    running, most, lock = 0, 0, threading.Lock()
    delays = random.Random(0)

    def slow_invert(frames):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            delay = delays.uniform(0.0, 0.03)
        time.sleep(delay)
        with lock:
            running -= 1
        return [255 - f for f in frames]

    one = process_video(demo_clip, tmp_path / "one.mp4", slow_invert, progress=False)
    three = process_video(demo_clip, tmp_path / "three.mp4", slow_invert, progress=False, workers=3)
    assert most >= 2 and one.frames == three.frames == 30  # the calls did overlap
    _, frames_one, audio_one = probe(tmp_path / "one.mp4")
    _, frames_three, audio_three = probe(tmp_path / "three.mp4")
    assert audio_three == audio_one > 0
    assert [(pts, t) for pts, t, _ in frames_three] == [(pts, t) for pts, t, _ in frames_one]
    assert_frames_in_order([f for _, _, f in frames_three], [f for _, _, f in frames_one], tolerance=2)


def test_a_failing_worker_stops_the_file_and_leaves_no_output(demo_clip, tmp_path):
    calls = []

    def fails_on_the_fifth(frames):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("model crashed")
        return frames

    with pytest.raises(RuntimeError, match="model crashed"):
        process_video(demo_clip, tmp_path / "never.mp4", fails_on_the_fifth, progress=False, workers=2)
    assert list(tmp_path.iterdir()) == []


def test_variable_frame_rate_timestamps_survive(tmp_path):
    src = tmp_path / "vfr.mkv"
    writer = VideoWriter(src, 64, 48, Fraction(30), Fraction(1, 1000))
    times_ms = [0, 33, 66, 200, 233, 500, 533]
    for i, t in enumerate(times_ms):
        writer.write(np.full((48, 64, 3), i * 30, np.uint8), t)
    writer.close()
    process_video(src, tmp_path / "out.mkv", lambda f: f, progress=False)
    _, frames, _ = probe(tmp_path / "out.mkv")
    assert [round(t * 1000) for _, t, _ in frames] == times_ms


def clip_with_audio(path, sample_rate, frames=10):
    """`frames` grey levels at 10 fps with 1 s of a 440 Hz tone in AAC at `sample_rate`."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=sample_rate)
        audio.layout = "mono"
        for i in range(frames):
            container.mux(video.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8))))
        tone = (0.3 * np.sin(np.arange(sample_rate) * 2 * np.pi * 440 / sample_rate)).astype(np.float32)
        for start in range(0, sample_rate, 1024):
            piece = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
            piece.sample_rate, piece.pts = sample_rate, start
            container.mux(audio.encode(piece))
        container.mux(audio.encode(None))
        container.mux(video.encode(None))


@pytest.mark.parametrize(
    ("suffix", "audio_codec", "audio_rate"),
    [(".m4v", "aac", 44100), (".mov", "aac", 44100), (".mkv", "aac", 44100), (".webm", "opus", 48000)],
)
def test_every_container_keeps_frames_and_audio_of_a_44_1_khz_clip(tmp_path, suffix, audio_codec, audio_rate):
    """Opus takes no 44.1 kHz: a WebM gets the audio resampled to 48 kHz; the others copy it."""
    clip_with_audio(tmp_path / "src.mp4", 44100)
    out = tmp_path / f"out{suffix}"
    result = process_video(tmp_path / "src.mp4", out, lambda f: f, progress=False)
    info, frames, audio_packets = probe(out)
    assert result.frames == len(frames) == 10
    assert (info["audio_codec"], info["audio_rate"]) == (audio_codec, audio_rate) and audio_packets > 0


def test_odd_sized_video_is_written_as_4_2_0_one_pixel_larger(tmp_path, caplog):
    """67x45 in 4:4:4 -> 68x46 in 4:2:0 (what every player decodes), the last column and row
    repeated, said in one line."""
    src = tmp_path / "odd.mkv"
    with av.open(str(src), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 67, 45, "yuv444p"
        for i in range(5):
            frame = np.zeros((45, 67, 3), np.uint8)
            frame[:, -1] = frame[-1, :] = 200  # the edge that is repeated
            frame[:, :-1][:-1] = 40 * i
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with caplog.at_level("WARNING", logger="stylecast.video"):
        result = process_video(src, tmp_path / "odd_out.mp4", lambda f: f, progress=False)
    assert [r.getMessage() for r in caplog.records] == [
        "67x45 has an odd side; written as 68x46 (4:2:0 needs even sizes: the last column and row repeated)"
    ]
    with av.open(str(tmp_path / "odd_out.mp4")) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    info, frames, _ = probe(tmp_path / "odd_out.mp4")
    assert result.frames == 5 and info["size"] == (68, 46) and len(frames) == 5
    last = frames[-1][2].astype(int)
    assert abs(last[:40, :60].mean() - 160) < 6 and abs(last[-1, :60].mean() - 200) < 20


def test_truncated_video_yields_every_decodable_frame(demo_clip, tmp_path):
    data = demo_clip.read_bytes()
    # An mp4 cut in half loses its index at the end; a Matroska file cut in half keeps the
    # frames before the cut decodable. Make an mkv, then cut it.
    whole = tmp_path / "whole.mkv"
    process_video(demo_clip, whole, lambda f: f, progress=False)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) * 6 // 10])
    reader = VideoReader(cut)
    decodable = sum(1 for item in reader.items() if isinstance(item, Frame))
    reader.close()
    assert 5 < decodable < 30
    result = process_video(cut, tmp_path / "from_cut.mp4", lambda f: f, progress=False)
    assert result.frames == decodable
    assert data  # the source clip itself was not touched


def test_failing_stylizer_leaves_no_output(demo_clip, tmp_path):
    def explode(frames):
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError, match="model crashed"):
        process_video(demo_clip, tmp_path / "never.mp4", explode, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "video not found"), (b"", "not a readable video"), (b"\x00\x01garbage" * 100, "not a readable video")],
    ids=["missing", "empty", "garbage"],
)
def test_unreadable_videos_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        process_video(path, tmp_path / "out.mp4", lambda f: f, progress=False)
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize(("rotation", "top_left_white"), [(-90, True), (90, False), (180, False)])
def test_a_phone_clip_with_a_display_matrix_comes_out_upright(tmp_path, rotation, top_left_white):
    """A 64x32 clip stored with its left half white and a display rotation: the output is what a
    player shows, turned upright, with no display matrix left to turn it again."""
    src = tmp_path / "phone.mp4"
    stored = np.zeros((32, 64, 3), np.uint8)
    stored[:, :32] = 255  # left half white, as stored
    with av.open(str(src), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(rotation)
        for _ in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    result = process_video(src, tmp_path / "out.mp4", lambda f: f, progress=False)
    expected = np.rot90(stored, round(rotation / 90))  # counter-clockwise quarter turns, as shown
    assert (result.width, result.height) == (expected.shape[1], expected.shape[0])
    with av.open(str(tmp_path / "out.mp4")) as container:
        frames = list(container.decode(video=0))
    assert all(f.rotation == 0 for f in frames) and len(frames) == 3
    out = frames[0].to_ndarray(format="rgb24").astype(int)
    assert np.abs(out - expected).mean() < 10
    assert (out[2, 2].mean() > 128) == top_left_white
