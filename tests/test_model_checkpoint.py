"""Checkpoint files: what loads, what is refused, and that refusing never runs code."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from samdesk.errors import CheckpointError
from samdesk.model.checkpoint import infer_config, load_sam, read_state_dict
from samdesk.model.config import KNOWN_CONFIGS, describe
from samdesk.model.sam import build_sam
from samdesk.model.testing import SMALL_CONFIG, random_sam_state_dict, save_random_checkpoint


@pytest.fixture(scope="module")
def small_sd() -> dict[str, torch.Tensor]:
    return random_sam_state_dict(SMALL_CONFIG, seed=1)


def _meta_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """Keys and shapes of a released architecture without allocating its weights."""
    with torch.device("meta"):
        return build_sam(KNOWN_CONFIGS[arch]).state_dict()


@pytest.mark.parametrize("arch", ["vit_b", "vit_l", "vit_h", "tiny_vit"])
def test_architecture_is_read_from_keys_and_shapes(arch):
    config = infer_config(_meta_state_dict(arch))
    assert config == KNOWN_CONFIGS[arch]


def test_vit_numbers_are_read_from_the_file():
    cfg = infer_config(_meta_state_dict("vit_h")).encoder
    assert (cfg.embed_dim, cfg.depth, cfg.num_heads) == (1280, 32, 16)
    assert cfg.global_attn_indexes == (7, 15, 23, 31)
    assert (cfg.window_size, cfg.img_size, cfg.patch_size) == (14, 1024, 16)
    assert "1280-dim, 32 blocks" in describe(infer_config(_meta_state_dict("vit_h")))


def test_small_network_is_a_custom_sam(small_sd):
    config = infer_config(small_sd)
    assert config.arch == "custom"
    assert config.encoder == SMALL_CONFIG.encoder


def test_file_name_does_not_matter(tmp_path, small_sd):
    path = tmp_path / "sam_vit_h_4b8939.pth"  # a misleading name
    torch.save(small_sd, path)
    assert load_sam(path).config.arch == "custom"


def test_wrapped_and_prefixed_state_dicts_load(tmp_path, small_sd):
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model": small_sd, "epoch": 3}, wrapped)
    prefixed = tmp_path / "prefixed.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in small_sd.items()}}, prefixed)
    for path in (wrapped, prefixed):
        sd = read_state_dict(path)
        assert sd.keys() == small_sd.keys()
        assert torch.equal(sd["image_encoder.pos_embed"], small_sd["image_encoder.pos_embed"])


def _message(path: Path, **kwargs) -> str:
    with pytest.raises(CheckpointError) as info:
        load_sam(path, **kwargs)
    text = str(info.value)
    assert str(path) in text, text  # every message names the file
    return text


def test_missing_empty_and_folder(tmp_path):
    assert "no such file" in _message(tmp_path / "nope.pth")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    assert "empty" in _message(empty)
    folder = tmp_path / "folder.pth"
    folder.mkdir()
    assert "folder" in _message(folder)


def test_truncated_file_reports_sizes(tmp_path):
    path = save_random_checkpoint(tmp_path / "full.pth", "small", seed=0)
    data = path.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 3])
    text = _message(cut)
    assert "truncated" in text
    present_mb = len(data) // 3 / 1e6
    total_mb = len(data) / 1e6
    assert f"{present_mb:.0f} MB of about" in text
    expected = float(text.split("of about ")[1].split(" MB")[0])
    assert abs(expected - total_mb) <= max(1.0, 0.05 * total_mb)


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(bytes(range(256)) * 10)
    assert "not a PyTorch checkpoint" in _message(junk)
    html = tmp_path / "page.pth"
    html.write_text("<!DOCTYPE html><html><body>Sign in</body></html>")
    assert "web page" in _message(html)


def test_pickle_that_runs_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned.txt"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    zipped = tmp_path / "evil.pth"
    torch.save({"image_encoder.x": Evil()}, zipped)
    raw = tmp_path / "evil_raw.pth"
    raw.write_bytes(pickle.dumps(Evil(), protocol=2))
    for path in (zipped, raw):
        text = _message(path)
        assert "never runs code" in text or "damaged" in text
        assert not marker.exists()


def test_wrong_model_family(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3), "fc.bias": torch.zeros(10)}, path)
    assert "not a SAM checkpoint" in _message(path)
    nontensor = tmp_path / "meta.pth"
    torch.save({"image_encoder.pos_embed": torch.zeros(1), "note": "hello"}, nontensor)
    assert "not weights" in _message(nontensor)


def test_missing_and_mismatched_weights(tmp_path, small_sd):
    missing = dict(small_sd)
    del missing["mask_decoder.iou_token.weight"]
    path = tmp_path / "missing.pth"
    torch.save(missing, path)
    assert "mask_decoder.iou_token.weight" in _message(path)

    wrong = dict(small_sd)
    wrong["image_encoder.blocks.2.attn.qkv.weight"] = torch.zeros(10, 64)
    path = tmp_path / "wrong.pth"
    torch.save(wrong, path)
    assert "qkv" in _message(path)


def test_expected_architecture(tmp_path, small_sd):
    path = tmp_path / "small.pth"
    torch.save(small_sd, path)
    text = _message(path, expected_arch="vit_b")
    assert "looks like SAM (custom architecture) (64-dim, 4 blocks" in text
    assert "expected SAM ViT-B (768-dim, 12 blocks" in text
    assert load_sam(path, expected_arch="custom").config.arch == "custom"


@pytest.mark.gpu
def test_weights_saved_on_cuda_load_on_cpu(tmp_path, small_sd):
    path = tmp_path / "cuda.pth"
    torch.save({k: v.cuda() for k, v in small_sd.items()}, path)
    sd = read_state_dict(path)
    assert all(v.device.type == "cpu" for v in sd.values())


def _as_if_saved_on_cuda(src: Path, dst: Path) -> None:
    """Rewrite a CPU checkpoint so every storage says it was saved on ``cuda:0``, as a file
    written on a GPU machine does (the pickle's location strings; the tensor bytes are the same).
    """
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("data.pkl"):
                cpu = b"X\x03\x00\x00\x00cpu"
                assert cpu in data
                data = data.replace(cpu, b"X\x06\x00\x00\x00cuda:0")
            zout.writestr(info, data)


def test_weights_saved_on_cuda_load_on_a_cpu_only_machine(tmp_path, small_sd):
    """Fault 20, on any machine: storages tagged cuda:0 load through map_location="cpu"."""
    plain = tmp_path / "plain.pth"
    torch.save(small_sd, plain)
    path = tmp_path / "from_gpu.pth"
    _as_if_saved_on_cuda(plain, path)
    if not torch.cuda.is_available():  # the file really asks for CUDA without a map_location
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    sd = read_state_dict(path)
    assert all(v.device.type == "cpu" for v in sd.values())
    assert all(torch.equal(sd[k], small_sd[k]) for k in small_sd)
    assert load_sam(path).config.arch == "custom"


def test_half_precision_checkpoint_loads_as_float32(tmp_path, small_sd):
    path = tmp_path / "half.pth"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in small_sd.items()}, path)
    model = load_sam(path)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert torch.equal(model.pixel_mean.flatten(), torch.tensor([123.675, 116.28, 103.53]))
