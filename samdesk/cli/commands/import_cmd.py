"""``samdesk import FILE --format FORMAT --project PROJECT``: bring annotations into a project.

The file is checked completely first; a malformed one is refused with the list of its problems
and the project file is left byte-identical. The project is created if it does not exist.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from samdesk.annotation import Document
from samdesk.annotation.formats import IMPORTERS

NAME = "import"
HELP = "import COCO or labelme annotations into a project (created if missing)"
ORDER = 41


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", metavar="FILE", help="a COCO .json, a labelme .json or a folder of labelme files"
    )
    parser.add_argument(
        "--format", dest="fmt", required=True, choices=sorted(IMPORTERS), help="input format"
    )
    parser.add_argument(
        "--project", required=True, metavar="PROJECT", help="project file to add to (or create)"
    )
    parser.add_argument(
        "--images", metavar="DIR", help="folder to look for the images in (default: beside FILE)"
    )


def run(args: argparse.Namespace) -> int:
    project = Path(args.project)
    doc = Document.load(project) if project.exists() else Document()
    report = doc.import_file(args.fmt, args.file, images_dir=args.images)
    doc.save(project)
    print(report.summary())
    print(f"saved {project}")
    return 0
