"""The ``samdesk`` command: opens the app, or runs a headless subcommand.

``samdesk [IMAGE_OR_FOLDER_OR_PROJECT] [--model PATH_OR_NAME]`` opens the desktop app.
``samdesk SUBCOMMAND ...`` runs one of the commands in :mod:`samdesk.cli.commands`; every module
there is found automatically and provides ``NAME``, ``HELP``, ``ORDER``,
``configure(parser)`` and ``run(args) -> int``.

Errors derived from :class:`samdesk.errors.SamdeskError` are printed as one line on stderr with
exit status 1; nothing reaches the user as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from samdesk import __version__
from samdesk.errors import SamdeskError

PROG = "samdesk"


def _command_modules() -> list[ModuleType]:
    from samdesk.cli import commands

    modules = [
        importlib.import_module(f"{commands.__name__}.{info.name}")
        for info in pkgutil.iter_modules(commands.__path__)
        if not info.name.startswith("_")
    ]
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.NAME))


def build_parser() -> argparse.ArgumentParser:
    """The parser for ``samdesk SUBCOMMAND ...`` (``--help`` lists every subcommand)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Desktop image annotation with Segment Anything. Run without a subcommand "
            "(optionally with an image, folder or project) to open the app."
        ),
        epilog=f"'{PROG} [IMAGE_OR_FOLDER_OR_PROJECT] [--model PATH_OR_NAME]' opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.configure(p)
        p.set_defaults(_run=module.run)
    app = sub.add_parser("app", help="open the desktop app (the default)")
    _configure_app(app)
    app.set_defaults(_run=_run_app)
    return parser


def _configure_app(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="*", metavar="IMAGE_OR_FOLDER_OR_PROJECT", help="what to open"
    )
    parser.add_argument("--model", metavar="PATH_OR_NAME", help="SAM checkpoint or model name")


def _run_app(args: argparse.Namespace) -> int:
    from samdesk.ui.app import run_app

    return run_app(paths=list(args.paths), model=args.model)


class _StderrHandler(logging.Handler):
    """Prints samdesk's log warnings as ``samdesk: warning: ...`` on the current ``sys.stderr``
    (looked up at every record, so a redirected stderr gets them too)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(f"{PROG}: warning: {record.getMessage()}", file=sys.stderr)
        except Exception:  # a warning must never break a command
            self.handleError(record)


def _show_warnings() -> None:
    """Route the library's ``logging`` warnings (a cache folder that went read-only, a model
    index moved aside, ...) to the user once per process."""
    logger = logging.getLogger("samdesk")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler(level=logging.WARNING)
        logger.addHandler(handler)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``samdesk`` and ``python -m samdesk``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _show_warnings()
    parser = build_parser()
    subcommands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    first = next((a for a in argv if not a.startswith("-") or a in ("-h", "--help")), None)
    if argv and (first in subcommands or argv[0] in ("-h", "--help", "--version")):
        args = parser.parse_args(argv)
    else:
        app_parser = argparse.ArgumentParser(prog=PROG, add_help=False)
        _configure_app(app_parser)
        args = app_parser.parse_args(argv)
        args._run = _run_app
    try:
        return int(args._run(args) or 0)
    except SamdeskError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of our output went away (e.g. `samdesk models list | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
