"""``samdesk export PROJECT --to FORMAT OUT``: write a project's annotations for other tools."""

from __future__ import annotations

import argparse

from samdesk.annotation import Document
from samdesk.annotation.formats import EXPORTERS

NAME = "export"
HELP = "export a project's annotations as COCO, YOLO-seg, labelme or label images"
ORDER = 40


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT", help="the samdesk project file")
    parser.add_argument(
        "--to", dest="fmt", required=True, choices=sorted(EXPORTERS), help="output format"
    )
    parser.add_argument(
        "out",
        metavar="OUT",
        help="output: a .json file for coco, a folder for yolo, labelme and masks",
    )
    parser.add_argument(
        "--rle", action="store_true", help="coco: write every mask as RLE instead of polygons"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        metavar="PIXELS",
        help="polygon simplification tolerance in pixels (coco: 0, others: 0.45 by default)",
    )


def run(args: argparse.Namespace) -> int:
    doc = Document.load(args.project)
    options: dict[str, object] = {}
    if args.rle:
        options["rle"] = True
    if args.tolerance is not None:
        options["tolerance"] = args.tolerance
    report = doc.export(args.fmt, args.out, **options)
    print(report.summary())
    for path in report.files[:20]:
        print(f"  {path}")
    if len(report.files) > 20:
        print(f"  ... and {len(report.files) - 20} more file(s)")
    return 0
