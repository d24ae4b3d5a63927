"""SAM-family networks (SAM ViT-B/L/H, MobileSAM TinyViT, MedSAM) and checkpoint loading.

* :mod:`samdesk.model.checkpoint` -- ``load_sam(path)``: safe loading, architecture from shapes.
* :mod:`samdesk.model.config` -- architecture descriptions and the known names.
* :mod:`samdesk.model.sam` -- the whole network; ``image_encoder`` / ``prompt_encoder`` /
  ``mask_decoder`` with the official parameter names.
* :mod:`samdesk.model.attention` -- reference, blocked (CPU) and fused (GPU) attention.
* :mod:`samdesk.model.int8` -- int8 linears for the ViT encoder on x86 CPUs (oneDNN, VNNI).
* :mod:`samdesk.model.testing` -- seeded random checkpoints for tests and benchmarks.
* :mod:`samdesk.model.hashing` -- remembered SHA-256 of checkpoint files.

Only torch (and the standard library) is imported here: no Qt, no other samdesk layer.
"""
