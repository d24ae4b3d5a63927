"""The models samdesk knows by name: where to get them and how to recognise the genuine file.

Checksums were looked up in other projects' download configurations, since the publishers do
not all print them (sources per entry below). A checksum samdesk could not confirm is None, and
verification then reports the file as "unverified" instead of trusting an invented value.

``arch`` is the architecture :mod:`samdesk.model` reads from the weights ("vit_b", "vit_l",
"vit_h", "tiny_vit"); ``preprocessing`` is the Predictor's mode ("sam" or "medsam").
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from samdesk.errors import ModelError

#: A mirror folder for every model file (the file name is appended), e.g. an intranet server.
BASE_URL_ENV = "SAMDESK_MODEL_BASE_URL"


@dataclass(frozen=True)
class ModelInfo:
    """One downloadable model.

    Attributes:
        name: the registry name used on the command line and in settings, e.g. "vit_b".
        display_name: shown to users, e.g. "SAM ViT-B".
        file_name: the official file name, kept when installed.
        url: the official download URL.
        size: file size in bytes, or None if unconfirmed.
        sha256: hex SHA-256 of the file, or None if unconfirmed.
        md5: hex MD5 the publisher prints (Zenodo does), a second accepted proof, or None.
        arch: architecture read from the weights by samdesk.model.
        preprocessing: "sam" or "medsam".
        license: the weights' licence, as published.
        note: one line for the model manager (what it is good for, size).
    """

    name: str
    display_name: str
    file_name: str
    url: str
    size: int | None
    sha256: str | None
    md5: str | None
    arch: str
    preprocessing: str
    license: str
    note: str

    def download_url(self, override: str | None = None) -> str:
        """``override`` if given, else ``$SAMDESK_MODEL_BASE_URL/<file_name>``, else ``url``."""
        if override:
            return override
        base = os.environ.get(BASE_URL_ENV, "").strip()
        if base:
            return base.rstrip("/") + "/" + self.file_name
        return self.url

    @property
    def verifiable(self) -> bool:
        return self.sha256 is not None or self.md5 is not None


_SAM_BASE = "https://dl.fbaipublicfiles.com/segment_anything/"

# SAM ViT-B/L/H: SHA-256 as in micro-sam (micro_sam/util.py, _CHECKSUMS) and several other
# projects' configs (e.g. ComfyUI model lists, download scripts pinning the Meta release); sizes
# from the same kind of lists and wget logs of the official URLs (375,042,383 /
# 1,249,524,607 / 2,564,550,879 bytes). MD5s as pinned by IOPaint's segment-anything plugin and
# others (the official file names end in their first six hex digits).
# MobileSAM: SHA-256 6dbb9052... and 40,728,226 bytes as pinned by micro-sam (vit_t) and
# projects downloading weights/mobile_sam.pt at MobileSAM commit f706ad9c.
# MedSAM: Zenodo record 10689643 publishes MD5 3bb6db55... (pinned by several download scripts);
# the SHA-256 34b34b78... and 375,049,145 bytes are what several projects recorded for the
# official medsam_vit_b.pth (from the MedSAM README's download links). Either checksum is
# accepted, so a Zenodo download verifies even if the copies ever differed.
MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        ModelInfo(
            name="vit_b",
            display_name="SAM ViT-B",
            file_name="sam_vit_b_01ec64.pth",
            url=_SAM_BASE + "sam_vit_b_01ec64.pth",
            size=375_042_383,
            sha256="ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
            md5="01ec64d29a2fca3f0661936605ae66f8",
            arch="vit_b",
            preprocessing="sam",
            license="Apache-2.0",
            note="Segment Anything, base size (375 MB): the best speed/quality balance on CPU.",
        ),
        ModelInfo(
            name="vit_l",
            display_name="SAM ViT-L",
            file_name="sam_vit_l_0b3195.pth",
            url=_SAM_BASE + "sam_vit_l_0b3195.pth",
            size=1_249_524_607,
            sha256="3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
            md5="0b3195507c641ddb6910d2bb5adee89c",
            arch="vit_l",
            preprocessing="sam",
            license="Apache-2.0",
            note="Segment Anything, large (1.2 GB): slower, slightly better masks.",
        ),
        ModelInfo(
            name="vit_h",
            display_name="SAM ViT-H",
            file_name="sam_vit_h_4b8939.pth",
            url=_SAM_BASE + "sam_vit_h_4b8939.pth",
            size=2_564_550_879,
            sha256="a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
            md5="4b8939a88964f0f4ff5f5b2642c598a6",
            arch="vit_h",
            preprocessing="sam",
            license="Apache-2.0",
            note="Segment Anything, huge (2.5 GB): the best masks; a GPU is recommended.",
        ),
        ModelInfo(
            name="mobile_sam",
            display_name="MobileSAM",
            file_name="mobile_sam.pt",
            url=(
                "https://github.com/ChaoningZhang/MobileSAM/raw/"
                "f706ad9c4eb7f219c00d9050e46328518ffb65d2/weights/mobile_sam.pt"
            ),
            size=40_728_226,
            sha256="6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
            md5=None,
            arch="tiny_vit",
            preprocessing="sam",
            license="Apache-2.0",
            note="MobileSAM (40 MB): fastest on CPU, rougher edges.",
        ),
        ModelInfo(
            name="medsam",
            display_name="MedSAM",
            file_name="medsam_vit_b.pth",
            url="https://zenodo.org/records/10689643/files/medsam_vit_b.pth",
            size=375_049_145,
            sha256="34b34b78c1d18cb8c6bf84cf9c00e135d6d6c965699f3c0e31ef1bc9dcb5be74",
            md5="3bb6db55bd0c9ca30b61248bca72f8d6",
            arch="vit_b",
            preprocessing="medsam",
            license="CC-BY-4.0 (weights), Apache-2.0 (code)",
            note="MedSAM (375 MB): SAM ViT-B fine-tuned on medical images; draw boxes.",
        ),
    )
}


def names() -> list[str]:
    """Registry names in display order."""
    return list(MODELS)


def get(name: str) -> ModelInfo:
    """The registry entry ``name``; ModelError listing the known names otherwise."""
    info = MODELS.get(name.strip().lower())
    if info is None:
        raise ModelError(
            f"unknown model {name!r}; known models are {', '.join(MODELS)} (or give the path "
            "of a checkpoint file, or 'classic' for no model)"
        )
    return info


def by_file_name(file_name: str) -> ModelInfo | None:
    """The entry whose official file name is ``file_name``, if any."""
    return next((m for m in MODELS.values() if m.file_name == file_name), None)


def by_sha256(sha256: str) -> ModelInfo | None:
    """The entry whose SHA-256 is ``sha256``, if any."""
    return next((m for m in MODELS.values() if m.sha256 == sha256.lower()), None)
