"""Inference engine: predictor, classic backend, caches, model registry, downloads, jobs (no Qt)."""
