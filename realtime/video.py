"""Video files through PyAV: a reader that yields decoded RGB frames and raw audio packets in
file order, and a writer that encodes H.264 with the input's timestamps and copies the audio.

With `hardware=True` both try NVIDIA's codecs through PyAV's FFmpeg: NVDEC decoding (the
`cuda` hwaccel, which picks h264_cuvid, hevc_cuvid, ... per stream, frames downloaded to host
memory) and NVENC encoding (h264_nvenc). Where the driver or the GPU lacks them they fall back
to the CPU codecs with one log line, and report which codec ran.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np
from av.codec.hwaccel import HWAccel

from stylecast.core.errors import InputError

log = logging.getLogger("stylecast.video")

# Audio codecs each container takes as they are; anything else is re-encoded.
_AUDIO_COPY = {
    ".mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    ".m4v": {"aac", "mp3", "alac", "ac3", "eac3"},
    ".mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le"},
    ".mkv": None,  # Matroska takes every codec
    ".webm": {"opus", "vorbis"},
}
_AUDIO_FALLBACK = {".webm": "libopus"}
_VIDEO_CODEC = {".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}
VIDEO_SUFFIXES = set(_VIDEO_CODEC)
# FFmpeg's muxer for each suffix: ".m4v" is Apple's name for MP4 (FFmpeg's own "m4v" is a raw stream).
_MUXER = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
_NVENC = {"libx264": "h264_nvenc"}  # the hardware encoder standing in for each CPU one


@functools.cache
def nvenc_opens(codec: str) -> bool:
    """Whether this FFmpeg, driver and GPU can open the NVENC encoder `codec` (tried once)."""
    if codec not in av.codecs_available:
        return False
    context = cast(av.video.codeccontext.VideoCodecContext, av.CodecContext.create(codec, "w"))
    context.width, context.height, context.pix_fmt = 256, 256, "yuv420p"
    context.time_base = Fraction(1, 30)
    try:
        context.open()
    except av.error.FFmpegError as exc:
        log.info("no %s encoder here (%s); encoding on the CPU", codec, _reason(exc))
        return False
    return True


@dataclass
class Frame:
    """A decoded video frame: uint8 RGB H x W x 3 with its presentation time."""

    rgb: np.ndarray
    pts: int | None
    time_base: Fraction | None
    index: int


class VideoReader:
    """Opens a video file and yields Frames and audio `av.Packet`s in demux order.

    Packets that fail to decode are skipped and counted, so a truncated or partly corrupt file
    yields every frame that could be decoded.
    """

    def __init__(self, path: str | Path, hardware: bool = False):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"video not found: {self.path}")
        if self.path.is_dir():
            raise InputError(f"{self.path} is a folder, not a video")
        try:
            opened = self._open_hardware() if hardware else None
            self.container = opened or av.open(str(self.path))
        except (av.error.FFmpegError, UnicodeDecodeError) as exc:
            raise InputError(f"{self.path} is not a readable video ({_reason(exc)})") from None
        except OSError as exc:
            raise InputError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        if not self.container.streams.video:
            self.container.close()
            raise InputError(f"{self.path} has no video stream")
        self.video = self.container.streams.video[0]
        self.video.thread_type = "AUTO"  # frame and slice threads in the decoder
        self.audio = self.container.streams.audio[0] if self.container.streams.audio else None
        ctx = self.video.codec_context
        if not ctx.width or not ctx.height:
            self.container.close()
            raise InputError(f"{self.path} has a video stream without a frame size")
        # phones store portrait video sideways with a display matrix that says how to turn it;
        # frames are turned upright here, so everything after sees (and writes) them as shown
        self.quarter_turns = self._quarter_turns()
        sideways = self.quarter_turns % 2
        self.width, self.height = (ctx.height, ctx.width) if sideways else (ctx.width, ctx.height)
        self.rate: Fraction = self.video.average_rate or self.video.guessed_rate or Fraction(30)
        self.time_base: Fraction = self.video.time_base or Fraction(1, 90000)
        self.frame_count = self.video.frames or None  # container's count; may be absent
        if self.frame_count is None and self.video.duration:
            self.frame_count = round(float(self.video.duration * self.time_base * self.rate))
        self.decode_errors = 0

    def _quarter_turns(self) -> int:
        """Counter-clockwise quarter turns that show the video upright (its first frame's display
        matrix, read on a second opening so this one's stream stays at its start)."""
        try:
            with av.open(str(self.path)) as probe:
                frame = next(probe.decode(video=0), None)
        except (av.error.FFmpegError, UnicodeDecodeError, OSError):
            return 0  # what cannot be probed is decoded as stored; items() reports the errors
        return round((frame.rotation if frame is not None else 0) / 90) % 4

    def _open_hardware(self) -> av.container.InputContainer | None:
        """The file opened for NVDEC decoding, or None where no CUDA device can be had (then the
        caller opens it for the CPU, which also reports a bad file the usual way)."""
        try:
            container = av.open(str(self.path), hwaccel=HWAccel("cuda", allow_software_fallback=True))
        except (av.error.FFmpegError, UnicodeDecodeError) as exc:
            log.info("no CUDA video decoding here (%s); decoding on the CPU", _reason(exc))
            return None
        return container

    @property
    def decoder(self) -> str:
        """The decoder that ran, e.g. "h264" or "h264 (cuda)" (a GPU without NVDEC support for
        the stream's codec decodes it on the CPU: then no "(cuda)")."""
        return self.video.codec_context.name + (" (cuda)" if self.video.codec_context.is_hwaccel else "")

    def items(self) -> Iterator[Frame | av.Packet]:
        streams = [s for s in (self.video, self.audio) if s is not None]
        index = 0
        demuxed = self.container.demux(*streams)
        while True:
            try:
                packet = next(demuxed)
            except StopIteration:
                break
            except av.error.FFmpegError as exc:  # a damaged container: keep what came before
                log.warning("%s: stopped reading at a damaged packet (%s)", self.path, _reason(exc))
                self.decode_errors += 1
                break
            if packet.stream.type == "audio":
                if packet.dts is not None:
                    yield packet
                continue
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                self.decode_errors += 1
                continue
            for frame in cast("list[av.VideoFrame]", frames):  # a video stream's packet
                rgb: np.ndarray = frame.to_ndarray(format="rgb24")
                if self.quarter_turns:
                    rgb = np.ascontiguousarray(np.rot90(rgb, self.quarter_turns))
                yield Frame(rgb, frame.pts, frame.time_base, index)
                index += 1

    def rgb_frames(self) -> Iterator[np.ndarray]:
        """The video frames alone, uint8 RGB H x W x 3, in order (audio packets skipped)."""
        return (item.rgb for item in self.items() if isinstance(item, Frame))

    def close(self) -> None:
        self.container.close()


class VideoWriter:
    """H.264 (or VP9 for .webm) at the input's frame rate and timestamps, audio copied."""

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        rate: Fraction,
        time_base: Fraction | None = None,
        audio: av.audio.stream.AudioStream | None = None,
        container_suffix: str | None = None,
        crf: int = 18,
        hardware: bool = False,
    ):
        suffix = (container_suffix or Path(path).suffix).lower()
        if suffix not in _VIDEO_CODEC:
            raise InputError(f"cannot write video as {suffix!r}; use one of {', '.join(sorted(_VIDEO_CODEC))}")
        codec = _VIDEO_CODEC[suffix]
        # 4:2:0, the only chroma layout every player decodes, needs even sizes: an odd side gets
        # its last row or column repeated once (4:4:4 at the odd size plays in few players)
        self.pad_bottom, self.pad_right = height % 2, width % 2
        if self.pad_bottom or self.pad_right:
            log.warning(
                "%dx%d has an odd side; written as %dx%d (4:2:0 needs even sizes: the last %s repeated)",
                width, height, width + self.pad_right, height + self.pad_bottom,
                " and ".join(n for n, odd in (("column", self.pad_right), ("row", self.pad_bottom)) if odd),
            )  # fmt: skip
        if hardware and codec in _NVENC and nvenc_opens(_NVENC[codec]):
            codec = _NVENC[codec]
        self.container = av.open(str(path), mode="w", format=_MUXER[suffix])
        self.stream = cast("av.video.stream.VideoStream", self.container.add_stream(codec, rate=rate))
        self.stream.width, self.stream.height = width + self.pad_right, height + self.pad_bottom
        self.stream.pix_fmt = "yuv420p"
        self.encoder = codec
        self.rate = rate
        self.time_base = time_base or 1 / rate
        # The encoder's own time base too: PyAV sets it to 1/rate, which would round
        # variable-rate timestamps to the nearest frame slot.
        self.stream.time_base = self.stream.codec_context.time_base = self.time_base
        options: dict[str, dict[str, object]] = {
            "libx264": {"crf": str(crf), "preset": "veryfast"},
            # constant quality (no bitrate target) at about libx264's crf, medium preset
            "h264_nvenc": {"rc": "vbr", "cq": str(crf), "b": "0", "preset": "p4"},
            "libvpx-vp9": {"crf": str(crf + 14), "b": "0"},
        }
        self.stream.options = options[codec]
        self.audio_in = audio
        self.audio_out = None
        self.transcoder: _AudioTranscoder | None = None
        if audio is not None:
            allowed = _AUDIO_COPY[suffix]
            if allowed is None or audio.codec_context.name in allowed:
                self.audio_out = self.container.add_stream_from_template(audio)
            else:
                self.transcoder = _AudioTranscoder(self.container, audio, _AUDIO_FALLBACK.get(suffix, "aac"))
        self.frames_written = 0

    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        """Encode one frame; `pts` in the writer's time base (None: evenly spaced at the rate)."""
        if self.pad_bottom or self.pad_right:
            rgb = np.pad(rgb, ((0, self.pad_bottom), (0, self.pad_right), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if pts is None:
            pts = round(self.frames_written / self.rate / self.time_base)
        frame.pts, frame.time_base = pts, self.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames_written += 1

    def write_audio(self, packet: av.Packet) -> None:
        if self.audio_out is not None:
            packet.stream = self.audio_out
            self.container.mux(packet)
        elif self.transcoder is not None:
            self.transcoder.write(packet)

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        if self.transcoder is not None:
            self.transcoder.flush()
        self.container.close()

    def abort(self) -> None:
        """Close without flushing the encoder: the file is being thrown away."""
        self.container.close()


def _sample_rate_for(codec: str, rate: int) -> int:
    """`rate` if the encoder takes it, else the lowest it takes above it (Opus: 44.1 kHz -> 48 kHz)."""
    allowed = av.Codec(codec, "w").audio_rates
    if not allowed or rate in allowed:
        return rate
    return min((r for r in allowed if r > rate), default=max(allowed))


class _AudioTranscoder:
    """Decode the input's audio and encode it in a codec the output container takes."""

    def __init__(self, container: av.container.OutputContainer, source: av.audio.stream.AudioStream, codec: str):
        self.container = container
        rate = _sample_rate_for(codec, source.codec_context.sample_rate or 48000)
        self.stream = cast("av.audio.stream.AudioStream", container.add_stream(codec, rate=rate))
        self.stream.layout = source.codec_context.layout.name if source.codec_context.layout else "stereo"
        self.decoder = cast(
            av.audio.codeccontext.AudioCodecContext, av.CodecContext.create(source.codec_context.name, "r")
        )
        if source.codec_context.extradata:
            self.decoder.extradata = source.codec_context.extradata
        self.resampler = av.AudioResampler(format=self.stream.format.name, layout=self.stream.layout.name, rate=rate)

    def write(self, packet: av.Packet | None) -> None:
        try:
            frames = self.decoder.decode(packet)
        except av.error.FFmpegError:
            return  # a damaged audio packet is dropped; the video is what matters
        for frame in frames:
            for resampled in self.resampler.resample(frame):
                resampled.pts = None
                for out in self.stream.encode(resampled):
                    self.container.mux(out)

    def flush(self) -> None:
        self.write(None)
        for out in self.stream.encode(None):
            self.container.mux(out)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.strip().rstrip(":") or type(exc).__name__
