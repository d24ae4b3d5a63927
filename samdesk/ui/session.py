"""The object being segmented on one image: prompts, SAM's candidates, the chosen one, edits.

Pure data and numpy (no Qt), so the rules can be tested on their own:

* an :class:`ObjectState` is immutable; every user action makes a new one and the undo history
  keeps (before, after) pairs that share their arrays instead of copying masks;
* candidate masks are stored packed (bounding-box crop, 8 pixels per byte) and brush strokes as
  sparse XOR diffs (:class:`samdesk.ui.masks.MaskDiff`);
* :meth:`ObjectState.request` builds the decoder request for the state's prompts: the previous
  low-res logits of the CHOSEN candidate (or of the edited mask) go in as ``mask_input`` so
  every click refines the current mask.

Coordinates are original-image pixels: points are (x, y, positive) pixel indices, the box is
(x0, y0, x1, y1) with inclusive pixel indices.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from samdesk.engine.region import Region
from samdesk.ui.masks import MaskDiff, PackedMask, mask_to_low_res_logits

Point = tuple[int, int, bool]
Box = tuple[int, int, int, int]


class Candidates:
    """SAM's answer to one prompt: C masks, their predicted IoU and low-res logits.

    Masks are kept packed (bounding-box crop, 1 bit per pixel). To keep the GUI thread's work
    per answer small, :meth:`from_result` packs only the candidate shown; the others stay as
    the decoder's arrays until :meth:`pack_all` (called a moment later) or first use.

    Attributes:
        scores: (C,) float32 predicted IoU.
        low_res: (C, 256, 256) float32 logits in SAM's low-resolution frame.
    """

    def __init__(
        self,
        masks: list[PackedMask | np.ndarray],
        scores: np.ndarray,
        low_res: np.ndarray,
        *,
        region: Region | None = None,
        shape: tuple[int, int] | None = None,
    ) -> None:
        self._masks = masks
        self.scores = scores
        self.low_res = low_res
        #: region mode: the unpacked masks are crops of this region of an image of ``shape``
        self.region = region
        self._shape = shape

    @classmethod
    def from_result(
        cls,
        masks: np.ndarray,
        scores: np.ndarray,
        low_res: np.ndarray,
        *,
        pack: int | None = None,
        region: Region | None = None,
        shape: tuple[int, int] | None = None,
    ) -> Candidates:
        """Keep a decoder result: masks (C, H, W) bool, scores (C,), low_res (C, 256, 256).
        ``pack``: pack only that candidate now (None: all). With ``region`` the masks are that
        crop of an image of ``shape`` (H, W) (region mode); they are kept as crops."""
        if region is not None and shape is None:
            raise ValueError("a region's candidates need the image shape")
        items: list[PackedMask | np.ndarray] = [np.asarray(m, dtype=bool) for m in masks]
        candidates = cls(
            items,
            np.asarray(scores, np.float32).reshape(-1).copy(),
            np.asarray(low_res, np.float32).copy(),
            region=region,
            shape=shape,
        )
        if pack is None:
            candidates.pack_all()
        else:
            candidates.packed(pack)
        return candidates

    def __len__(self) -> int:
        return len(self._masks)

    def packed(self, index: int) -> PackedMask:
        """Candidate ``index`` packed (packing it now if it was not yet)."""
        item = self._masks[index]
        if isinstance(item, np.ndarray):
            if self.region is not None and self._shape is not None:
                item = PackedMask.pack_crop(item, (self.region.y0, self.region.x0), self._shape)
            else:
                item = PackedMask.pack(item)
            self._masks[index] = item
        return item

    def mask(self, index: int) -> np.ndarray:
        """Candidate ``index`` as an (H, W) bool array (the whole image's frame)."""
        item = self._masks[index]
        if isinstance(item, PackedMask):
            return item.unpack()
        if self.region is not None and self._shape is not None:
            return self.region.to_full(item, self._shape)
        return item.copy()

    def pack_all(self) -> None:
        for index in range(len(self._masks)):
            self.packed(index)

    @property
    def masks(self) -> tuple[PackedMask, ...]:
        self.pack_all()
        return tuple(self._masks)  # type: ignore[arg-type]

    @property
    def best(self) -> int:
        """Index of the candidate with the highest predicted IoU."""
        return int(np.argmax(self.scores)) if len(self.scores) else 0

    @property
    def nbytes(self) -> int:
        self.pack_all()
        return sum(m.nbytes for m in self.masks) + self.scores.nbytes + self.low_res.nbytes


@dataclass(frozen=True, eq=False)
class PromptRequest:
    """What the worker gets for one decoder run (see samdesk.engine.worker.Prompt)."""

    point_coords: np.ndarray | None  # (N, 2) float32 x, y
    point_labels: np.ndarray | None  # (N,) int32 1 / 0
    box: np.ndarray | None  # (4,) float32 x0, y0, x1, y1
    mask_input: np.ndarray | None  # (1, 256, 256) float32
    multimask_output: bool
    region: Region | None = None  # region mode: segment in this crop


@dataclass(frozen=True, eq=False)
class ObjectState:
    """One immutable state of the object being segmented.

    Attributes:
        points: prompt points (x, y, positive), in the order given.
        box: prompt box or None.
        candidates: the decoder's latest answer, or None (no prompt yet, or only edits).
        chosen: index of the chosen candidate.
        edits: brush / eraser strokes applied on top of the chosen candidate (or on an empty
            mask when there are no candidates), oldest first.
        waiting: the prompts changed and the answer has not arrived yet; ``candidates`` are the
            previous answer, still shown meanwhile.
        before_prompt: the state just before the last prompt was given (what Backspace goes
            back to, mask included), None for a state without prompts.
        region: region mode: the crop of the image this object is segmented in (fixed by its
            first prompt; every later prompt and refinement stays in it), None: whole image.
    """

    points: tuple[Point, ...] = ()
    box: Box | None = None
    candidates: Candidates | None = None
    chosen: int = 0
    edits: tuple[MaskDiff, ...] = ()
    waiting: bool = False
    before_prompt: ObjectState | None = field(default=None, repr=False)
    region: Region | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def has_prompts(self) -> bool:
        return bool(self.points) or self.box is not None

    @property
    def is_empty(self) -> bool:
        """Nothing to show or accept: no prompts, no candidates, no edits."""
        return not self.has_prompts and self.candidates is None and not self.edits

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        """The working mask (H, W) bool: the chosen candidate with the edits applied.

        Computed once per state and cached; callers must not modify the returned array.
        """
        cached = self._cache.get("mask")
        if cached is not None and cached.shape == shape:
            return cached
        if self.candidates is not None and len(self.candidates):
            mask = self.candidates.mask(self.chosen)
        else:
            mask = np.zeros(shape, dtype=bool)
        for diff in self.edits:
            diff.apply(mask)
        mask.setflags(write=False)
        self._cache["mask"] = mask
        return mask

    def drop_mask(self) -> None:
        """Forget the unpacked working mask (the history keeps states small when not shown)."""
        self._cache.pop("mask", None)

    def set_mask_cache(self, mask: np.ndarray) -> None:
        """Provide the working mask when the caller already has it (a fresh decoder result or
        an edited copy), saving an unpack. ``mask`` must equal what :meth:`mask` computes."""
        mask.setflags(write=False)
        self._cache["mask"] = mask

    @property
    def resolution(self) -> ObjectState | None:
        """For a waiting state: the state its decoder answer produced, once known (so undo and
        redo never ask the decoder twice for the same prompts)."""
        return self._cache.get("resolved")

    def remember_resolution(self, state: ObjectState) -> None:
        self._cache["resolved"] = state

    def score(self) -> float | None:
        if self.candidates is None or not len(self.candidates) or self.edits:
            return None
        return float(self.candidates.scores[self.chosen])

    # --- transitions ------------------------------------------------------------------------

    def with_point(
        self, x: int, y: int, positive: bool, region: Region | None = None
    ) -> ObjectState:
        """Add a point; ``region``: the region for an object's first prompt (region mode)."""
        return self._prompted(region, points=(*self.points, (x, y, positive)))

    def with_box(self, box: Box, region: Region | None = None) -> ObjectState:
        return self._prompted(region, box=box)

    def _prompted(self, region: Region | None, **prompts: object) -> ObjectState:
        """A new prompt: waiting for its answer, Backspace goes back here, the mask shown stays
        until the answer comes. An object keeps the region of its first prompt."""
        return replace(
            self,
            **prompts,
            waiting=True,
            before_prompt=self,
            region=self.region if self.has_prompts else region,
            _cache=self._shown(),
        )

    def _shown(self) -> dict:
        """A new prompt keeps showing the same mask until it is answered: share the array."""
        mask = self._cache.get("mask")
        return {} if mask is None else {"mask": mask}

    def before_last_prompt(self) -> ObjectState | None:
        """The state before the last prompt (Backspace), or None when there is no prompt."""
        if not self.has_prompts:
            return None
        return self.before_prompt if self.before_prompt is not None else ObjectState()

    def with_choice(self, index: int) -> ObjectState:
        return replace(self, chosen=index, edits=(), _cache={})

    def with_edit(self, diff: MaskDiff) -> ObjectState:
        """A brush or eraser stroke; a pending decoder answer is abandoned (the user edits the
        mask they see)."""
        return replace(self, edits=(*self.edits, diff), waiting=False, _cache={})

    def resolved(self, candidates: Candidates) -> ObjectState:
        """The decoder's answer arrived: show the best candidate, edits folded in by SAM."""
        return replace(
            self, candidates=candidates, chosen=candidates.best, edits=(), waiting=False, _cache={}
        )

    # --- decoder request --------------------------------------------------------------------

    def mask_prompt(
        self, shape: tuple[int, int], region: Region | None = None
    ) -> np.ndarray | None:
        """(1, 256, 256) float32 logits of the mask shown, for the next decoder run, or None.

        Unedited: the chosen candidate's own low-res logits. Edited: the edited mask converted
        to SAM's low-res frame (:func:`samdesk.ui.masks.mask_to_low_res_logits`), keeping SAM's
        logits where they agree. ``region``: the frame is that crop's (region mode); SAM's
        logits of another frame (another region, or the whole image) are not reused.
        """
        previous = None
        same_frame = self.candidates is not None and self.candidates.region == region
        if self.candidates is not None and len(self.candidates) and same_frame:
            previous = self.candidates.low_res[self.chosen]
        if not self.edits:
            return None if previous is None else previous[None].astype(np.float32)
        mask = self.mask(shape)
        if region is not None:
            mask = mask[region.slices]
        return mask_to_low_res_logits(mask, previous)

    def request(self, shape: tuple[int, int]) -> PromptRequest | None:
        """The decoder request for this state's prompts, refining the mask that was shown when
        the last prompt was given (``before_prompt``'s mask, edits included).

        None when there is no prompt left (the caller then shows an empty object).
        Single-point prompts without a mask ask for 3 candidates (the click is ambiguous);
        anything else asks for one, refined from the previous mask.
        """
        if not self.has_prompts:
            return None
        coords = labels = None
        if self.points:
            coords = np.array([(x, y) for x, y, _ in self.points], dtype=np.float32)
            labels = np.array([1 if pos else 0 for _, _, pos in self.points], dtype=np.int32)
        box = None if self.box is None else np.array(self.box, dtype=np.float32)
        previous = self.before_prompt
        mask_input = None if previous is None else previous.mask_prompt(shape, self.region)
        single_click = len(self.points) == 1 and self.box is None
        multimask = single_click and mask_input is None
        return PromptRequest(coords, labels, box, mask_input, multimask, self.region)

    def prompts_record(self) -> dict:
        """JSON-able prompts for the Document (x, y in original-image pixels)."""
        record: dict = {
            "points": [[x, y] for x, y, _ in self.points],
            "labels": [1 if pos else 0 for _, _, pos in self.points],
        }
        if self.box is not None:
            record["box"] = list(self.box)
        return record
