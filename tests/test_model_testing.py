"""Random test checkpoints: official key layout, seeded, usable by every other test."""

from __future__ import annotations

import pytest
import torch

from samdesk.model.config import KNOWN_CONFIGS
from samdesk.model.sam import build_sam
from samdesk.model.testing import SMALL_CONFIG, random_sam_state_dict, save_random_checkpoint
from tests.support import official


@pytest.mark.parametrize("arch", ["vit_b", "vit_l", "vit_h"])
def test_key_layout_equals_segment_anything(arch):
    builders = official.segment_anything.sam_model_registry
    with torch.device("meta"):
        theirs = builders[arch]().state_dict()
        ours = build_sam(KNOWN_CONFIGS[arch]).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {
        k: tuple(v.shape) for k, v in theirs.items()
    }


def test_key_layout_equals_mobile_sam():
    theirs = official.mobile_sam.sam_model_registry["vit_t"]().state_dict()
    ours = random_sam_state_dict(KNOWN_CONFIGS["tiny_vit"], seed=0)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {
        k: tuple(v.shape) for k, v in theirs.items()
    }


def test_seeded_and_distinct():
    a = random_sam_state_dict(SMALL_CONFIG, seed=1)
    b = random_sam_state_dict(SMALL_CONFIG, seed=1)
    c = random_sam_state_dict(SMALL_CONFIG, seed=2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["image_encoder.pos_embed"], c["image_encoder.pos_embed"])
    # relative position tables are random (not the official zero init) so they are exercised
    assert a["image_encoder.blocks.0.attn.rel_pos_h"].abs().max() > 0


def test_save_writes_the_whole_file_or_nothing(tmp_path):
    path = save_random_checkpoint(tmp_path / "small.pth", "small", seed=0)
    assert path.exists() and not list(tmp_path.glob("*.part"))
    sd = torch.load(path, map_location="cpu", weights_only=True)
    assert sd.keys() == random_sam_state_dict(SMALL_CONFIG, 0).keys()
    with pytest.raises(ValueError, match="unknown arch"):
        save_random_checkpoint(tmp_path / "x.pth", "vit_z")
    assert not (tmp_path / "x.pth").exists()
