"""The `stylecast` command: a lazy table of subcommands, exit codes, and the one-line errors.

Only the chosen command's module is imported (and only it imports torch, if it needs it), so
`stylecast --help` and `stylecast video --help` answer at once. Every error the user can cause
ends as one line on stderr and exit code 2; outputs are written to a temporary file and renamed
when complete.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Any, NoReturn

from stylecast.cli.common import EXIT_USAGE, HelpFormatter, choose_model, with_output_flags
from stylecast.core.errors import InputError

# command -> (module under stylecast.cli with its `add_<command>` and `cmd_...` functions, help)
COMMANDS: dict[str, tuple[str, str]] = {
    "video": ("stylize", "stylize a video file (every frame, timing and audio kept)"),
    "image": ("stylize", "stylize images"),
    "webcam": ("stylize", "stylize a camera (or another live source) in a window"),
    "demo": ("stylize", "stylize a generated demo clip (or the camera) with the default model"),
    "sheet": ("stylize", "a contact sheet: images x models"),
    "serve": ("serve", "stream browser cameras back stylized over WebRTC (and host call rooms)"),
    "models": ("models", "list the shipped models"),
    "export": ("models", "export a model for deployment"),
    "train": ("train", "train a model"),
    "optimize": ("train", "Gatys et al.: optimize one image (slow; the quality reference)"),
    "eval": ("evaluate", "measure a model"),
}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2) that points at --help, rather
    than the whole usage block above it; every subcommand's parser is one of these too."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def chosen_command(argv: list[str]) -> str | None:
    """The first word that is not a top-level flag: the command argparse will pick."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The full parser of the command `argv` names; the others are listed with their help only."""
    chosen = chosen_command(sys.argv[1:] if argv is None else argv)
    parser = Parser(prog="stylecast", description="Live neural style transfer.", formatter_class=HelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens, with timings")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        if name == chosen:
            with_output_flags(sub)
            getattr(importlib.import_module(f"stylecast.cli.{module}"), f"add_{name}")(sub)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that outputs are cleaned up as on Ctrl-C."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # signal handlers live on the main thread
        return _main(argv)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    choose_model(args)
    chatty = (args.verbose or args.command in ("train", "optimize")) and os.environ.get(
        "RANK", "0"
    ) == "0"  # torchrun: rank 0 logs
    logging.basicConfig(level=logging.INFO if chatty else logging.WARNING, format="%(message)s")
    from stylecast.models.contract import CheckpointError  # without torch: the ONNX Runtime path never imports it

    try:
        return args.run(args)
    except (InputError, CheckpointError) as exc:  # models.vgg.VGGUnavailable is an InputError
        print(f"stylecast: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away (`stylecast models | head -1`): as Unix tools do, end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the flush at exit fails silently too
        return 0
    except OSError as exc:  # what the checks up front cannot see: a full disk, a mount gone read-only
        if args.verbose:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"stylecast: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stylecast: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("stylecast: terminated", file=sys.stderr)
        return 143
