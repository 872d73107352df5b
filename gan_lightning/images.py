"""Opening image files a user hands in (datasets, pairs, ``translate``'s inputs, ``compare``'s grids) with one guard.

Pillow refuses an image of more than twice ``PIL.Image.MAX_IMAGE_PIXELS`` (a decompression bomb) with an error, but
only *warns* (on stderr, before any line of ours) between once and twice the limit and then decodes it. Here both are
the same refusal: :func:`open_image` raises ``DecompressionBombError`` for either, so every caller turns it into its
one line (``IMAGE_ERRORS`` lists what a damaged or hostile file raises).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image

# What opening and decoding a damaged, truncated, foreign or oversized file raises.
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def open_image(path: str | Path) -> Image.Image:
    """``Image.open(path)`` (lazy: use it in a ``with``), raising ``DecompressionBombError`` for any image over
    Pillow's pixel limit instead of warning about it."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except Image.DecompressionBombWarning as warning:
            raise Image.DecompressionBombError(str(warning)) from None


def image_error_reason(error: BaseException) -> str:
    """The reason a line gives for an image that cannot be read: the error's type, and for a bomb its size."""
    if isinstance(error, Image.DecompressionBombError):
        size = str(error).split(",")[0]  # "Image size (N pixels) exceeds limit of M pixels"
        return f"DecompressionBombError: {size[0].lower()}{size[1:]}"
    return type(error).__name__
