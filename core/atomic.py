"""Outputs appear complete or not at all: write a temporary file beside, rename when done."""

from __future__ import annotations

import glob
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stylecast.core.errors import InputError


def _new_file_mode() -> int:
    """The mode open() would give a new file: 0o666 minus the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _new_file_mode()  # read once: setting the umask to read it is not thread-safe


def stage_beside(path: Path) -> Path:
    """An empty temporary file in `path`'s folder, keeping its suffix (writers pick formats by it):
    `.NAME.PID.RANDOM.partSUFFIX`. Those a process that no longer runs left for `path` (killed
    mid-write) are removed first."""
    remove_stale_parts(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.{os.getpid()}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    return Path(name)


def remove_stale_parts(path: Path) -> None:
    pattern = re.compile(rf"\.{re.escape(path.stem)}\.(\d+)\.[^.]+\.part{re.escape(path.suffix)}")
    for candidate in path.parent.glob(f".{glob.escape(path.stem)}.*.part{glob.escape(path.suffix)}"):
        match = pattern.fullmatch(candidate.name)
        if match and not _process_runs(int(match.group(1))):
            candidate.unlink(missing_ok=True)


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        pass
    return True


def publish(staged: Path, path: Path) -> None:
    """Move a finished staged file into place, with the mode a new file gets (mkstemp's is private)."""
    os.chmod(staged, FILE_MODE)
    os.replace(staged, path)


@contextmanager
def staged_file(path: str | Path) -> Iterator[Path]:
    """Yield a staged path; it becomes `path` if the block completes, and is deleted otherwise."""
    path = Path(path)
    staged = stage_beside(path)
    try:
        yield staged
        publish(staged, path)
    finally:
        staged.unlink(missing_ok=True)


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    import torch  # here: the rest of this module serves commands that need no torch

    with staged_file(path) as staged:
        torch.save(obj, staged)


def check_output_folder(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise InputError(f"output folder is not writable: {folder}")


def check_output_file(path: Path) -> None:
    """The folder exists and takes files, and `path` is not a folder itself."""
    check_output_folder(path)
    if path.is_dir():
        raise InputError(f"output {path} is a folder; give a file name")


def check_outputs_spare_inputs(pairs: list[tuple[Path, Path]]) -> None:
    """Refuse (input, output) pairs in which an output is one of the inputs (by name, through a
    symlink or `..`, or as a hard link) or two inputs go to the same output: each destroys a file."""
    written: dict[str, Path] = {}
    for source, target in pairs:
        if target.exists():
            victim = next((s for s, _ in pairs if s.exists() and os.path.samefile(s, target)), None)
            if victim is not None:
                raise InputError(f"output {target} would overwrite the input {victim}; choose another output")
        real = os.path.realpath(target)
        if real in written:
            raise InputError(f"{written[real]} and {source} would both be written to {target}; stylize them apart")
        written[real] = source


class AtomicFile:
    """A temporary path beside `path` (same suffix) that becomes `path` on commit()."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        check_output_file(self.path)
        try:
            self.tmp = stage_beside(self.path)
        except OSError as exc:  # os.access says yes to root, and on some network mounts, where writes fail
            raise InputError(f"cannot write in {self.path.parent}: {exc.strerror}") from None

    def commit(self) -> None:
        publish(self.tmp, self.path)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path; it is renamed to `path` if the block completes, else deleted."""
    output = AtomicFile(path)
    try:
        yield output.tmp
        output.commit()
    finally:
        output.discard()
