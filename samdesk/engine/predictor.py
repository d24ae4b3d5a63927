"""SAM-family predictor: the :class:`samdesk.engine.backend.Backend` for SAM, MobileSAM, MedSAM.

Mirrors segment-anything's ``SamPredictor`` (same arguments, coordinate frame, shapes, dtypes and
-- with ``precision="fp32"`` -- the same results), and adds what an interactive app needs:
``compute_embedding`` without changing state (background prefetch, caching), cancellation and
progress between encoder steps, a per-call thread budget, typed errors for bad input.

Coordinates everywhere: x, y in original-image pixels (x to the right, y down).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from samdesk.engine.backend import StepHook
from samdesk.engine.embedding import Embedding
from samdesk.engine.jobs import CancelToken
from samdesk.engine.paths import cache_dir
from samdesk.engine.precision import autocast_for, check_precision, resolve_precision
from samdesk.engine.predictor_images import (
    PREPROCESSING_MODES,
    PREPROCESSING_VERSION,
    check_image,
    postprocess_numpy,
    preprocess,
)
from samdesk.engine.predictor_prompts import check_prompt
from samdesk.engine.predictor_threads import ensure_threads, thread_budget
from samdesk.errors import DeviceError, InputError, ModelError
from samdesk.model.bf16_matmul import ExactSection, bf16_matmuls_available, exact_matmuls
from samdesk.model.checkpoint import load_sam
from samdesk.model.config import DISPLAY_NAMES
from samdesk.model.hashing import checkpoint_sha256
from samdesk.model.image_encoder import ImageEncoderViT
from samdesk.model.int8 import Int8Block, quantize_vit_blocks
from samdesk.model.sam import Sam

EMBEDDING_SHAPE = (256, 64, 64)


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"unknown device {device!r}; use 'cpu' or 'cuda'.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "CUDA was requested but no CUDA GPU is usable here (no GPU, no driver, or a CPU-only "
            "PyTorch). Choose the CPU instead."
        )
    if dev.type not in ("cpu", "cuda"):
        raise DeviceError(f"device {device!r} is not supported; use 'cpu' or 'cuda'.")
    return dev


class Predictor:
    """Encode an image once, then predict masks for any number of prompts.

    Attributes:
        name: e.g. "SAM ViT-B" (shown in the app).
        arch: "vit_b", "vit_l", "vit_h", "tiny_vit" or "custom".
        device: "cpu" or "cuda[:N]".
        precision: "fp32", "bf16" or "int8" (what "auto" or an unavailable "int8" resolved to).
        preprocessing: "sam" or "medsam".
    """

    def __init__(
        self,
        model: Sam,
        *,
        precision: str = "auto",
        preprocessing: str = "sam",
        checkpoint: str | os.PathLike[str] | None = None,
        hash_cache_dir: str | os.PathLike[str] | None = None,
        name: str | None = None,
    ) -> None:
        if preprocessing not in PREPROCESSING_MODES:
            raise InputError(
                f"preprocessing must be one of {', '.join(PREPROCESSING_MODES)}, not "
                f"{preprocessing!r}."
            )
        self.model = model
        self._torch_device = model.device
        self.device = str(self._torch_device)
        self.arch = model.config.arch
        encoder = model.image_encoder
        self.precision = resolve_precision(
            precision, self._torch_device, int8_capable=isinstance(encoder, ImageEncoderViT)
        )
        self._int8: list[Int8Block] | None = None
        if self.precision == "int8":  # weights quantised once, here (about 0.5 s for ViT-B)
            self._int8 = quantize_vit_blocks(encoder.blocks)
        # int8 or bf16 on a CPU with AMX-BF16: the encoder's float32 matmuls (int8: attention's
        # products; bf16: all of them, instead of autocast) with bf16 inputs (ADR 0071)
        self._bf16_products = (
            isinstance(encoder, ImageEncoderViT)  # TinyViT: no int8, autocast for bf16
            and self.precision in ("int8", "bf16")
            and self._torch_device.type == "cpu"
            and bf16_matmuls_available()
        )
        self.preprocessing = preprocessing
        base = DISPLAY_NAMES.get(self.arch, self.arch)
        self.name = name or (
            f"{base} (MedSAM preprocessing)" if preprocessing == "medsam" else base
        )
        self._checkpoint = Path(checkpoint) if checkpoint is not None else None
        self._hash_cache_dir = hash_cache_dir
        self._cache_key: str | None = None
        self._click_threads = torch.get_num_threads()
        self.reset_image()

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        device: str | torch.device | None = None,
        precision: str = "auto",
        preprocessing: str = "sam",
        *,
        expected_arch: str | None = None,
        hash_cache_dir: str | os.PathLike[str] | None = None,
    ) -> Predictor:
        """Load a SAM / MobileSAM / MedSAM checkpoint (architecture read from the file).

        Args:
            device: None = CUDA when available, else CPU.
            precision: "auto" (fastest that keeps the masks; see precision.py), "fp32" (the
                official result), "bf16" or "int8" (fp32 where int8 cannot run).
            preprocessing: "sam" (SAM, MobileSAM, most fine-tunes) or "medsam".
            expected_arch: refuse a file of another architecture (CheckpointError).
            hash_cache_dir: where the checkpoint's SHA-256 is remembered (default:
                :func:`samdesk.engine.paths.cache_dir`, which honours ``SAMDESK_CACHE_DIR``).
        """
        dev = _resolve_device(device)
        if preprocessing not in PREPROCESSING_MODES:
            raise InputError(
                f"preprocessing must be one of {', '.join(PREPROCESSING_MODES)}, not "
                f"{preprocessing!r}."
            )
        check_precision(precision)  # reject a bad value before the slow load
        try:
            model = load_sam(path, expected_arch=expected_arch, device=dev)
        except torch.cuda.OutOfMemoryError:
            _release_cuda_memory()
            raise DeviceError(
                f"{path}: the GPU has too little free memory for this model; close other GPU "
                "programs or use the CPU."
            ) from None
        except MemoryError:
            raise ModelError(
                f"{path}: not enough memory to load this model; close other programs or choose "
                "a smaller model (MobileSAM or SAM ViT-B)."
            ) from None
        if hash_cache_dir is None:
            hash_cache_dir = cache_dir()
        return cls(
            model,
            precision=precision,
            preprocessing=preprocessing,
            checkpoint=path,
            hash_cache_dir=hash_cache_dir,
        )

    # --- identity -----------------------------------------------------------------------------

    @property
    def cache_key(self) -> str:
        """``sam:<sha256 of the checkpoint>:<precision>:<preprocessing version>``; the precision
        part is ``int8-bf16attn`` for int8 with bf16 attention products and ``bf16-products``
        for bf16 run as float32 with bf16 products (CPUs with AMX-BF16) instead of autocast.

        The hash is computed on first use (seconds for ViT-H) and remembered in a sidecar keyed
        by path, size and mtime, so later sessions get it instantly. A predictor built from an
        in-memory model hashes its weights instead.
        """
        if self._cache_key is None:
            if self._checkpoint is not None:
                digest = checkpoint_sha256(self._checkpoint, self._hash_cache_dir)
            else:
                digest = _state_dict_sha256(self.model)
            version = PREPROCESSING_VERSION[self.preprocessing]
            # int8 with bf16 attention products computes a (slightly) different embedding
            variant = self.precision
            if self._bf16_products:
                variant = "int8-bf16attn" if self._int8 is not None else "bf16-products"
            self._cache_key = f"sam:{digest}:{variant}:{version}"
        return self._cache_key

    # --- image state --------------------------------------------------------------------------

    def reset_image(self) -> None:
        self._features: torch.Tensor | None = None
        self._decoder_cache: dict[str, torch.Tensor] = {}
        self.original_size: tuple[int, int] | None = None
        self.input_size: tuple[int, int] | None = None

    @property
    def is_image_set(self) -> bool:
        return self._features is not None

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        """Encode ``image`` ((H, W, 3) uint8 RGB/BGR or (H, W) uint8 gray) for ``predict``."""
        self.set_embedding(self.compute_embedding(check_image(image, image_format)))

    def compute_embedding(
        self,
        image: np.ndarray,
        *,
        cancel: CancelToken | None = None,
        num_threads: int | None = None,
        step_hook: StepHook | None = None,
    ) -> Embedding:
        """Encode ``image`` ((H, W, 3) uint8 RGB or (H, W) gray) without changing state.

        ``step_hook(done, total)`` is called between encoder steps (after each block's attention
        and MLP, after each head of a global-attention block); it may block or raise.
        ``cancel`` is checked at the same points (CancelledError). ``num_threads`` limits this
        call's intra-op threads.
        """
        rgb = check_image(image)
        key = self.cache_key
        encoder = self.model.image_encoder
        total = encoder.num_steps
        done = 0
        section: ExactSection | None = None  # the encoder's exact section, if it has one

        def on_step() -> None:
            nonlocal done
            done = min(done + 1, total)
            if cancel is not None:
                cancel.check()
            if step_hook is None:
                return
            if section is None:
                step_hook(done, total)
            else:  # the hook may pause: other predictors' fast sections must not wait for it
                with section.released():
                    step_hook(done, total)

        with thread_budget(num_threads), torch.inference_mode():
            if cancel is not None:
                cancel.check()
            x, input_size = preprocess(rgb, self.preprocessing, encoder.img_size)
            try:
                autocast = (
                    contextlib.nullcontext()
                    if self._bf16_products
                    else autocast_for(self.precision, self._torch_device)
                )
                with self._matmul_section() as section, autocast:
                    features = encoder(x.to(self._torch_device), on_step, **self._encoder_options)
            except torch.cuda.OutOfMemoryError:
                _release_cuda_memory()  # the failed encode's blocks, so a retry or a click fits
                raise DeviceError(
                    "the GPU ran out of memory while encoding the image; close other GPU "
                    "programs, choose a smaller model or switch the device to CPU."
                ) from None
            except MemoryError:
                raise ModelError(
                    "not enough memory to encode the image with this model; close other "
                    "programs or choose a smaller model."
                ) from None
            features = features[0].float().cpu().numpy()
        if step_hook is not None and done < total:
            step_hook(total, total)
        return Embedding(
            features=features,
            original_size=(int(rgb.shape[0]), int(rgb.shape[1])),
            input_size=input_size,
            model_key=key,
        )

    def set_embedding(self, embedding: Embedding) -> None:
        """Make ``embedding`` (from this model's ``compute_embedding`` or a cache) current."""
        if not isinstance(embedding, Embedding):
            raise InputError(f"expected an Embedding, got {type(embedding).__name__}.")
        if embedding.model_key != self.cache_key:
            raise InputError(
                "this embedding was computed by a different model, precision or preprocessing; "
                "encode the image again with the current model."
            )
        feats = np.asarray(embedding.features)
        if feats.shape != EMBEDDING_SHAPE:
            raise InputError(
                f"embedding features have shape {feats.shape}, expected {EMBEDDING_SHAPE}."
            )
        self._features = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32))[None].to(
            self._torch_device
        )
        self._decoder_cache = {}
        self.original_size = tuple(embedding.original_size)  # type: ignore[assignment]
        self.input_size = tuple(embedding.input_size)  # type: ignore[assignment]

    def get_image_embedding(self) -> torch.Tensor:
        """The current image embedding, (1, 256, 64, 64) float32 on the model's device."""
        if self._features is None:
            raise InputError("no image is set; call set_image(...) first.")
        return self._features

    # --- prompts ------------------------------------------------------------------------------

    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks for the current image, as ``SamPredictor.predict``.

        Returns masks (C, H, W) bool (float32 logits with ``return_logits``), scores (C,)
        float32, low_res_logits (C, 256, 256) float32; C = 3 with ``multimask_output`` else 1.
        """
        if self._features is None or self.original_size is None or self.input_size is None:
            raise InputError("no image is set; call set_image(...) before predict(...).")
        prompt = check_prompt(
            point_coords, point_labels, box, mask_input, self.original_size, self.input_size
        )
        ensure_threads(self._click_threads)
        dev = self._torch_device
        with torch.inference_mode(), exact_matmuls():  # the decoder: float32 at every precision
            points = None
            if prompt.points is not None and prompt.labels is not None:
                coords = torch.as_tensor(prompt.points, dtype=torch.float32, device=dev)[None]
                labels = torch.as_tensor(prompt.labels, dtype=torch.int32, device=dev)[None]
                points = (coords, labels)
            boxes = None
            if prompt.box is not None:
                boxes = torch.as_tensor(prompt.box, dtype=torch.float32, device=dev)[None]
            masks_in = None
            if prompt.mask_input is not None:
                masks_in = torch.as_tensor(prompt.mask_input, device=dev)[None]
            pe = self.model.prompt_encoder
            # a mask prompt goes to the decoder as its 16 features per token (ADR 0018)
            sparse, dense = pe(points=points, boxes=boxes, masks=None)
            low_res, iou = self.model.mask_decoder(
                image_embeddings=self._features,
                image_pe=pe.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=bool(multimask_output),
                # the image's token-major copies and first-block projections are reused while
                # the image stays the same
                image_cache=self._decoder_cache,
                dense_cached=masks_in is None,
                mask_features=None if masks_in is None else pe.mask_features(masks_in),
            )
            low_np = low_res[0].float().cpu().numpy()
            masks = postprocess_numpy(
                low_np,
                self.input_size,
                self.original_size,
                self.model.image_encoder.img_size,
                threshold=None if return_logits else self.model.mask_threshold,
            )
            return masks, iou[0].float().cpu().numpy(), low_np

    @property
    def _encoder_options(self) -> dict[str, object]:
        """Keyword arguments of the image encoder's forward (the ViT's int8 and bf16 options;
        TinyViT takes none)."""
        if not isinstance(self.model.image_encoder, ImageEncoderViT):
            return {}
        return {"int8": self._int8, "bf16_products": self._bf16_products}

    def _matmul_section(self) -> contextlib.AbstractContextManager[ExactSection | None]:
        """The encoder's float32 matmuls run in an exact section (even while another
        predictor's encode uses bf16 products in this process), except for int8 and for
        bf16 with bf16 products, whose encoders open their own short fast sections
        (:mod:`samdesk.model.bf16_matmul`)."""
        if self._int8 is not None or self._bf16_products:
            return contextlib.nullcontext()
        return exact_matmuls()


def _state_dict_sha256(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(
            value.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()


def _release_cuda_memory() -> None:
    """Return the CUDA caching allocator's free blocks after an out-of-memory error."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
