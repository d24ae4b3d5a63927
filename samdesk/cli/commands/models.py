"""``samdesk models list | download NAME | import PATH | verify [NAME]``: manage installed models.

- ``list``: every known model (installed or not) and every imported custom model, with its state.
- ``download NAME [--url URL]``: fetch a registry model with progress; Ctrl+C stops it and keeps
  the partial file, and running the same command again resumes it. ``--url`` downloads this one
  file from elsewhere; ``SAMDESK_MODEL_BASE_URL`` points every download at a mirror folder.
- ``import PATH [--name NAME] [--preprocessing sam|medsam]``: install a file you already have
  (offline machines); known models are recognised by checksum, others must be SAM-format.
- ``verify [NAME]``: re-hash installed files; exit status 1 if any is damaged or changed.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # heavy imports happen inside run(), when the command is used
    from samdesk.engine.store import ModelStatus, ModelStore

NAME = "models"
HELP = "list, download, import and verify models"
ORDER = 30


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.add_parser("list", help="show known and installed models (the default)")
    download = sub.add_parser("download", help="download a model (resumes an interrupted one)")
    download.add_argument("name", metavar="NAME", help="vit_b, vit_l, vit_h, mobile_sam, medsam")
    download.add_argument(
        "--url", help="download the file from this URL instead (e.g. an intranet mirror)"
    )
    imp = sub.add_parser("import", help="install a checkpoint file you already have")
    imp.add_argument("path", metavar="PATH", help="the .pth / .pt file (it is copied, not moved)")
    imp.add_argument("--name", help="name for a custom model (default: from the file name)")
    imp.add_argument(
        "--preprocessing",
        choices=("sam", "medsam"),
        help="for a custom model: 'medsam' for MedSAM fine-tunes (default: sam)",
    )
    verify = sub.add_parser("verify", help="check installed files against their checksums")
    verify.add_argument("name", nargs="?", metavar="NAME", help="one model (default: all)")


def run(args: argparse.Namespace) -> int:
    from samdesk.engine.store import ModelStore

    store = ModelStore()
    if args.action in (None, "list"):
        return _list(store)
    if args.action == "download":
        return _download(store, args.name, args.url)
    if args.action == "import":
        rec = store.import_model(args.path, name=args.name, preprocessing=args.preprocessing)
        kind = "known model, checksum verified" if rec.kind == "registry" else "custom model"
        print(f"imported {rec.name} ({kind}, {rec.arch}, preprocessing {rec.preprocessing})")
        print(f"  {store.folder / rec.file}")
        return 0
    rows = store.verify(args.name)
    for row in rows:
        print(_row_text(row))
    bad = [r for r in rows if r.state in ("damaged", "changed", "missing")]
    if bad:
        print(
            "damaged or changed: " + ", ".join(r.name for r in bad) + ". Download or import "
            "them again.",
            file=sys.stderr,
        )
    return 1 if bad else 0


def _size(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _row_text(row: ModelStatus) -> str:
    where = f"  {row.path}" if row.path is not None else ""
    return f"{row.name:<12} {row.display_name:<24} {row.state:<14} {_size(row.size):>9}{where}"


def _list(store: ModelStore) -> int:
    print(f"models folder: {store.folder}")
    for row in store.list_models():
        print(_row_text(row))
        if row.kind == "registry" and not row.installed:
            partial = store.partial_download(row.name)
            if partial:
                print(f"{'':<12} partial download: {_size(partial)}; run the download to resume")
    return 0


def _download(store: ModelStore, name: str, url: str | None) -> int:
    import time

    from samdesk.cli.commands.embed import ProgressLine, bar
    from samdesk.engine import registry

    info = registry.get(name)
    line = ProgressLine()
    source = info.download_url(url)
    resume = store.partial_download(name)
    print(f"downloading {info.display_name} from {source}", file=sys.stderr)
    if resume:
        print(f"resuming after {_size(resume)}", file=sys.stderr)
    started = time.monotonic()
    state = {"shown": -1}

    def progress(done: int, total: int | None) -> None:
        rate = done / max(1e-3, time.monotonic() - started)
        if total:
            percent = 100 * done // total
            text = f"{bar(done, total)} {percent:3d}% {_size(done)} of {_size(total)}"
            step = percent // 10
        else:
            text = f"{_size(done)}"
            step = done // 50_000_000
        text += f"  {rate / 1e6:.1f} MB/s"
        line.update(text)
        if not line.tty and step != state["shown"]:  # logs: a line every 10 %
            state["shown"] = step
            line.done(text)

    try:
        rec = store.download(name, url=url, progress=progress)
    except KeyboardInterrupt:
        line.done("interrupted")
        kept = store.partial_download(name)
        print(
            f"samdesk: download interrupted; {_size(kept)} kept. Run 'samdesk models download "
            f"{name}' again to resume.",
            file=sys.stderr,
        )
        return 130
    line.done("done")
    verdict = "checksum verified" if rec.state == "verified" else "no known checksum: unverified"
    print(f"installed {info.display_name} ({verdict})")
    print(f"  {store.folder / rec.file}")
    return 0
