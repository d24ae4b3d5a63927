"""Annotation document, geometry and file formats (imports neither torch nor Qt)."""
