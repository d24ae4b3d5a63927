"""Load SAM-family checkpoint files safely and work out which network they hold.

Only ``torch.load(..., weights_only=True)`` is used: a checkpoint never runs code. The
architecture is read from the state dict's keys and shapes (never from the file name), so the
official files (``sam_vit_b_01ec64.pth``, ``sam_vit_l_0b3195.pth``, ``sam_vit_h_4b8939.pth``,
``mobile_sam.pt``, MedSAM's ``medsam_vit_b.pth``) and consistent fine-tunes all load.

Every problem is a :class:`samdesk.errors.CheckpointError` that names the file and says what is
wrong and what to do.
"""

from __future__ import annotations

import os
import pickle
import re
import struct
import zipfile
from pathlib import Path

import torch

from samdesk.errors import CheckpointError
from samdesk.model.config import (
    DISPLAY_NAMES,
    KNOWN_CONFIGS,
    DecoderConfig,
    SamConfig,
    TinyViTConfig,
    ViTConfig,
    describe,
    name_for,
)
from samdesk.model.sam import Sam, build_sam

ENC = "image_encoder."
_REDOWNLOAD = "Download the file again, or choose another checkpoint."


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


# --- reading the file ---------------------------------------------------------------------


class _Stub:
    """Stands in for every class a pickle names while we only measure it; runs nothing."""

    def __init__(self, name: str = "") -> None:
        self.name = name

    def __call__(self, *args: object, **kwargs: object) -> _Stub:
        return _Stub()

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass


_STORAGE_BYTES = {
    "DoubleStorage": 8,
    "LongStorage": 8,
    "FloatStorage": 4,
    "IntStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "ShortStorage": 2,
}


class _MeasuringUnpickler(pickle.Unpickler):
    """Adds up the tensor storage sizes a torch ``data.pkl`` refers to, importing nothing."""

    def __init__(self, file: object) -> None:
        super().__init__(file)  # type: ignore[arg-type]
        self.total = 0

    def find_class(self, module: str, name: str) -> _Stub:  # never imports
        return _Stub(name)

    def persistent_load(self, pid: object) -> _Stub:
        if isinstance(pid, tuple) and len(pid) == 5 and isinstance(pid[4], int):
            storage = pid[1]
            size = _STORAGE_BYTES.get(storage.name, 1) if isinstance(storage, _Stub) else 1
            self.total += pid[4] * size
        return _Stub()


def _expected_zip_size(path: Path) -> int | None:
    """Approximate full size of a truncated torch zip file, from its intact ``data.pkl``."""
    try:
        with open(path, "rb") as f:
            head = f.read(30)
            if len(head) < 30 or head[:4] != b"PK\x03\x04":
                return None
            name_len, extra_len = struct.unpack("<HH", head[26:30])
            name = f.read(name_len)
            if not name.endswith(b"data.pkl"):
                return None
            f.seek(30 + name_len + extra_len)
            unpickler = _MeasuringUnpickler(f)
            unpickler.load()
            return unpickler.total or None
    except Exception:  # a damaged pickle simply gives no estimate
        return None


def _sniff(path: Path, size: int) -> None:
    """Refuse files that are clearly not PyTorch checkpoints, with a helpful reason."""
    with open(path, "rb") as f:
        head = f.read(64)
    low = head.lstrip().lower()
    if low.startswith((b"<!doctype", b"<html", b"<?xml")):
        raise CheckpointError(
            f"{path}: this is a web page, not model weights (the download probably failed or "
            f"needed a login). {_REDOWNLOAD}"
        )
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path):
                pass
        except zipfile.BadZipFile:
            expected = _expected_zip_size(path)
            if expected and expected > size:
                raise CheckpointError(
                    f"{path}: the file is truncated ({_mb(size)} of about {_mb(expected)}); "
                    f"the download or copy stopped early. {_REDOWNLOAD}"
                ) from None
            raise CheckpointError(
                f"{path}: the file is truncated or damaged (its zip directory is missing; "
                f"{_mb(size)} present). {_REDOWNLOAD}"
            ) from None
        return
    if head[:1] == b"\x80":  # a pickle (legacy torch format)
        return
    if len(head) >= 8 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < size:
        raise CheckpointError(
            f"{path}: this is a .safetensors file; samdesk reads the PyTorch .pth/.pt files "
            "published with SAM, MobileSAM and MedSAM."
        )
    if head[:1] == b"\x08":
        raise CheckpointError(
            f"{path}: this looks like an ONNX model; samdesk needs the PyTorch checkpoint "
            "(.pth/.pt) of the model instead."
        )
    raise CheckpointError(
        f"{path}: not a PyTorch checkpoint (neither a zip nor a pickle file). Choose the "
        ".pth/.pt file of a SAM, MobileSAM or MedSAM model."
    )


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, on the CPU, keys as in segment-anything.

    Accepts the plain state dict, ``{"model": ...}`` / ``{"state_dict": ...}`` wrappers and keys
    prefixed ``module.`` (DataParallel). Raises CheckpointError for anything else.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(f"{p}: no such file. Check the path or download the model.") from None
    except OSError as err:
        raise CheckpointError(f"{p}: cannot be read ({err.strerror}).") from None
    if p.is_dir():
        raise CheckpointError(f"{p}: is a folder; choose the checkpoint file inside it.")
    if size == 0:
        raise CheckpointError(f"{p}: the file is empty (0 bytes). {_REDOWNLOAD}")
    try:
        _sniff(p, size)
    except OSError as err:
        raise CheckpointError(f"{p}: cannot be read ({err.strerror}).") from None
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower() or "weights_only" in str(err).lower():
            raise CheckpointError(
                f"{p}: the file contains Python objects or code, not only weights; samdesk "
                "never runs code from a checkpoint and refused to open it. Use the official "
                "weights file."
            ) from None
        raise CheckpointError(f"{p}: damaged checkpoint ({err}). {_REDOWNLOAD}") from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as err:
        raise CheckpointError(
            f"{p}: damaged or truncated checkpoint ({_first_line(err)}). {_REDOWNLOAD}"
        ) from None
    return _unwrap(p, obj)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def _unwrap(path: Path, obj: object) -> dict[str, torch.Tensor]:
    for _ in range(2):
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            for key in ("model", "state_dict"):
                if isinstance(obj.get(key), dict):
                    obj = obj[key]
                    break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(
            f"{path}: holds a {type(obj).__name__}, not a dictionary of weights. Choose the "
            "checkpoint of a SAM, MobileSAM or MedSAM model."
        )
    if all(isinstance(k, str) and k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if len(tensors) != len(obj):
        others = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)][:3]
        raise CheckpointError(
            f"{path}: entries that are not weights ({', '.join(others)}). Choose the plain "
            "model checkpoint."
        )
    return tensors


# --- working out the architecture ----------------------------------------------------------


def _indices(sd: dict[str, torch.Tensor], prefix: str) -> list[int]:
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for k in sd if (m := pat.match(k))}
    return sorted(found)


def _count(sd: dict[str, torch.Tensor], prefix: str, what: str) -> int:
    idx = _indices(sd, prefix)
    if idx != list(range(len(idx))):
        raise CheckpointError(f"{what}: numbered {idx[:5]}..., expected 0, 1, 2, ...")
    return len(idx)


def _shape(sd: dict[str, torch.Tensor], key: str) -> tuple[int, ...]:
    if key not in sd:
        raise KeyError(key)
    return tuple(sd[key].shape)


def _infer_vit(sd: dict[str, torch.Tensor]) -> ViTConfig:
    embed_dim, _, patch, _ = _shape(sd, ENC + "patch_embed.proj.weight")
    grid = _shape(sd, ENC + "pos_embed")[1]
    depth = _count(sd, ENC + "blocks.", "image encoder blocks")
    if depth == 0:
        raise KeyError(ENC + "blocks.0")
    head_dim = _shape(sd, ENC + "blocks.0.attn.rel_pos_h")[1]
    if head_dim == 0 or embed_dim % head_dim:
        raise CheckpointError(f"head size {head_dim} does not divide the width {embed_dim}")
    global_blocks: list[int] = []
    windows: set[int] = set()
    for i in range(depth):
        length = _shape(sd, f"{ENC}blocks.{i}.attn.rel_pos_h")[0]
        if length == 2 * grid - 1:
            global_blocks.append(i)
        else:
            windows.add((length + 1) // 2)
    if len(windows) > 1:
        raise CheckpointError(f"blocks disagree on the attention window size {sorted(windows)}")
    return ViTConfig(
        embed_dim=embed_dim,
        depth=depth,
        num_heads=embed_dim // head_dim,
        global_attn_indexes=tuple(global_blocks),
        window_size=windows.pop() if windows else 14,
        img_size=grid * patch,
        patch_size=patch,
        mlp_dim=_shape(sd, ENC + "blocks.0.mlp.lin1.weight")[0],
        out_chans=_shape(sd, ENC + "neck.0.weight")[0],
        qkv_bias=ENC + "blocks.0.attn.qkv.bias" in sd,
    )


def _infer_tiny_vit(sd: dict[str, torch.Tensor]) -> TinyViTConfig:
    stages = _count(sd, ENC + "layers.", "TinyViT stages")
    if stages < 3:
        raise CheckpointError(f"TinyViT with {stages} stages; MobileSAM has 4")
    hidden, dim0 = _shape(sd, ENC + "layers.0.blocks.0.conv1.c.weight")[:2]
    dims = [dim0]
    depths = [_count(sd, ENC + "layers.0.blocks.", "TinyViT stage 0 blocks")]
    heads = [2]  # stage 0 is convolutional: heads and window are unused (official values)
    windows = [7]
    for s in range(1, stages):
        pre = f"{ENC}layers.{s}.blocks."
        dims.append(_shape(sd, pre + "0.attn.qkv.weight")[1])
        depths.append(_count(sd, pre, f"TinyViT stage {s} blocks"))
        n_heads, n_offsets = _shape(sd, pre + "0.attn.attention_biases")
        heads.append(n_heads)
        windows.append(round(n_offsets**0.5))
    fc1 = _shape(sd, ENC + "layers.1.blocks.0.mlp.fc1.weight")[0]
    head = sd.get(ENC + "head.weight")
    return TinyViTConfig(
        embed_dims=tuple(dims),
        depths=tuple(depths),
        num_heads=tuple(heads),
        window_sizes=tuple(windows),
        mlp_ratio=fc1 / dims[1],
        mbconv_expand_ratio=hidden / dim0,
        local_conv_size=_shape(sd, ENC + "layers.1.blocks.0.local_conv.c.weight")[-1],
        num_classes=int(head.shape[0]) if head is not None else 0,
        out_chans=_shape(sd, ENC + "neck.0.weight")[0],
    )


def _infer_decoder(sd: dict[str, torch.Tensor]) -> DecoderConfig:
    dim = _shape(sd, "prompt_encoder.point_embeddings.0.weight")[1]
    tr = "mask_decoder.transformer."
    internal = _shape(sd, tr + "final_attn_token_to_image.q_proj.weight")[0]
    return DecoderConfig(
        prompt_embed_dim=dim,
        mask_in_chans=_shape(sd, "prompt_encoder.mask_downscaling.3.weight")[0],
        depth=_count(sd, tr + "layers.", "mask decoder layers"),
        mlp_dim=_shape(sd, tr + "layers.0.mlp.lin1.weight")[0],
        attention_downsample_rate=max(1, dim // internal),
        num_multimask_outputs=_shape(sd, "mask_decoder.mask_tokens.weight")[0] - 1,
        iou_head_depth=_count(sd, "mask_decoder.iou_prediction_head.layers.", "IoU head layers"),
        iou_head_hidden_dim=_shape(sd, "mask_decoder.iou_prediction_head.layers.0.weight")[0],
    )


def infer_config(sd: dict[str, torch.Tensor], source: str = "checkpoint") -> SamConfig:
    """The architecture of a SAM-format state dict; CheckpointError if it is not one."""
    if not any(k.startswith(ENC) for k in sd):
        sample = ", ".join(sorted(sd)[:3])
        raise CheckpointError(
            f"{source}: not a SAM checkpoint (no image encoder weights; keys look like "
            f"{sample}). SAM 2 and other model families are not supported; choose a SAM, "
            "MobileSAM or MedSAM checkpoint."
        )
    try:
        tiny = ENC + "patch_embed.seq.0.c.weight" in sd
        encoder: ViTConfig | TinyViTConfig = _infer_tiny_vit(sd) if tiny else _infer_vit(sd)
        decoder = _infer_decoder(sd)
    except KeyError as err:
        raise CheckpointError(
            f"{source}: not a complete SAM checkpoint (missing {err.args[0]}). {_REDOWNLOAD}"
        ) from None
    except (ValueError, IndexError) as err:
        raise CheckpointError(f"{source}: unexpected weight shapes ({err}).") from None
    except CheckpointError as err:
        raise CheckpointError(f"{source}: inconsistent SAM checkpoint ({err}).") from None
    if isinstance(encoder, ViTConfig) and encoder.grid != 64:
        raise CheckpointError(
            f"{source}: image encoder makes a {encoder.grid}x{encoder.grid} embedding; SAM's "
            "prompt encoder and mask decoder need 64x64 (1024-pixel input, 16-pixel patches)."
        )
    if encoder.out_chans != decoder.prompt_embed_dim:
        raise CheckpointError(
            f"{source}: the encoder makes {encoder.out_chans} channels but the decoder expects "
            f"{decoder.prompt_embed_dim}."
        )
    return SamConfig(name_for(encoder, decoder), encoder, decoder)


def load_sam(
    path: str | os.PathLike[str],
    *,
    expected_arch: str | None = None,
    device: str | torch.device = "cpu",
) -> Sam:
    """Read a checkpoint, build the matching network, load the weights, move it to ``device``.

    ``expected_arch`` (e.g. ``"vit_b"``) makes a file holding another architecture an error
    ("looks like ViT-H weights, expected ViT-B"). The returned network is ready for inference
    (:meth:`Sam.prepare_for_inference` has been called).
    """
    sd = read_state_dict(path)
    config = infer_config(sd, str(path))
    if expected_arch is not None and config.arch != expected_arch:
        wanted = KNOWN_CONFIGS.get(expected_arch)
        wanted_text = (
            describe(wanted) if wanted else DISPLAY_NAMES.get(expected_arch, expected_arch)
        )
        raise CheckpointError(
            f"{path}: looks like {describe(config)} weights, expected {wanted_text}. "
            "Choose the matching model type or the matching file."
        )
    # Built on the meta device and given the loaded tensors themselves (assign=True): the
    # weights are in memory once, not twice (ViT-H: 2.5 GB instead of 5 GB at load).
    with torch.device("meta"):
        model = build_sam(config)
    try:
        result = model.load_state_dict(sd, strict=False, assign=True)
    except RuntimeError as err:  # size mismatches
        lines = [ln.strip() for ln in str(err).splitlines() if "size mismatch" in ln]
        detail = "; ".join(lines[:2]) or _first_line(err)
        raise CheckpointError(
            f"{path}: weight shapes do not fit {describe(config)} ({detail}). The file may be "
            "damaged or from a different model family."
        ) from None
    problems = [f"missing {k}" for k in result.missing_keys]
    problems += [f"unexpected {k}" for k in result.unexpected_keys]
    if problems:
        shown = "; ".join(problems[:4]) + (
            f"; and {len(problems) - 4} more" if len(problems) > 4 else ""
        )
        raise CheckpointError(
            f"{path}: does not match {describe(config)} ({shown}). The file may be damaged or "
            "from a different model family."
        )
    del sd
    model.reset_constants()
    # fine-tunes saved in half precision run in float32 like the official files
    return model.float().to(device).prepare_for_inference()
