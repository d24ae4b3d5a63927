"""The model registry: well-formed entries that agree with the model layer and with themselves."""

from __future__ import annotations

import re

import pytest

from samdesk.engine import registry
from samdesk.engine.predictor_images import PREPROCESSING_MODES
from samdesk.errors import ModelError
from samdesk.model.config import KNOWN_CONFIGS


def test_known_models() -> None:
    assert registry.names() == ["vit_b", "vit_l", "vit_h", "mobile_sam", "medsam"]
    assert registry.get("medsam").preprocessing == "medsam"
    assert registry.get(" ViT_B ").file_name == "sam_vit_b_01ec64.pth"


@pytest.mark.parametrize("name", registry.names())
def test_entry_is_well_formed(name: str) -> None:
    m = registry.get(name)
    assert m.name == name and m.display_name and m.note and m.license
    assert m.url.startswith("https://") and m.url.endswith(m.file_name)
    assert m.arch in KNOWN_CONFIGS
    assert m.preprocessing in PREPROCESSING_MODES
    assert m.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", m.sha256)
    assert m.md5 is None or re.fullmatch(r"[0-9a-f]{32}", m.md5)
    assert m.size is None or m.size > 1_000_000
    assert m.verifiable
    assert registry.by_file_name(m.file_name) is m
    if m.sha256 is not None:
        assert registry.by_sha256(m.sha256.upper()) is m


def test_official_sam_file_names_carry_their_md5_prefix() -> None:
    """Meta named each file after the first 6 hex digits of its MD5: a cross-check of the
    recorded checksums that does not depend on where they were copied from."""
    for name in ("vit_b", "vit_l", "vit_h"):
        m = registry.get(name)
        assert m.md5 is not None
        assert m.file_name.rsplit("_", 1)[1].removesuffix(".pth") == m.md5[:6]


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ModelError, match="vit_b, vit_l, vit_h, mobile_sam, medsam"):
        registry.get("vit_x")


def test_download_url_override_and_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    m = registry.get("vit_b")
    monkeypatch.delenv(registry.BASE_URL_ENV, raising=False)
    assert m.download_url() == m.url
    monkeypatch.setenv(registry.BASE_URL_ENV, "http://mirror.local/sam/")
    assert m.download_url() == "http://mirror.local/sam/sam_vit_b_01ec64.pth"
    assert m.download_url("http://elsewhere/x.pth") == "http://elsewhere/x.pth"
