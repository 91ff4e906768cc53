"""Loading the user's own images with Pillow, into plain uint8 arrays.

``load_image`` accepts whatever a student is likely to try (phone photos with an
EXIF rotation, transparent PNGs, 16-bit scans, palette GIFs, CMYK JPEGs) and turns
every failure into an ``ImageLoadError`` whose message says what went wrong in
plain words.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# 50 megapixels: beyond any phone photo, and small enough (150 MB as RGB) to be safe.
MAX_PIXELS = 50_000_000

SUPPORTED_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class ImageLoadError(Exception):
    """An image could not be loaded; ``str(exc)`` is a message for the user."""


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """(H, W) uint8 for grey images, (H, W, 3) uint8 for colour ones.

    Orientation follows the EXIF tag, transparency is composited on white,
    16-bit and float images are scaled to 8 bits, palette and CMYK become RGB.
    Images larger than ``max_pixels`` are refused before their pixels are decoded.
    """
    path = Path(path)
    name = path.name
    if not path.exists():
        raise ImageLoadError(f"{name}: file not found ({path}).")
    if path.is_dir():
        raise ImageLoadError(f"{name} is a folder, not an image file.")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageLoadError(f"{name}: cannot read the file ({exc.strerror}).") from exc
    if size == 0:
        raise ImageLoadError(f"{name} is empty (0 bytes): it holds no image.")
    try:
        with warnings.catch_warnings():
            # Pillow warns (rather than raises) between its limit and twice it; ours is checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise ImageLoadError(
                        f"{name} is too large: {width} x {height} pixels "
                        f"({width * height / 1e6:.0f} megapixels; the limit is {max_pixels / 1e6:.0f}). "
                        "Scale it down and open it again."
                    )
                im.load()
                return _to_array(ImageOps.exif_transpose(im))
    except ImageLoadError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageLoadError(
            f"{name} is not an image Backprop Studio can read (is it really a "
            f"{path.suffix.lstrip('.').upper() or 'picture'} file?). Try PNG, JPEG, BMP, GIF, TIFF or WebP."
        ) from exc
    except Image.DecompressionBombError as exc:
        # Pillow refuses far-too-large images itself, before we see their size.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size_text = f" ({int(found.group(1)) / 1e6:.0f} megapixels)" if found else ""
        raise ImageLoadError(
            f"{name} is too large{size_text}; the limit is {max_pixels / 1e6:.0f} megapixels. "
            "Scale it down and open it again.") from exc
    except PermissionError as exc:
        raise ImageLoadError(f"{name}: permission denied; the file cannot be read.") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageLoadError(f"{name} is corrupt or incomplete and cannot be decoded ({exc}).") from exc
    except MemoryError as exc:
        raise ImageLoadError(f"{name}: not enough memory to decode this image.") from exc


def _to_array(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") else max(float(a.max(initial=0)), 1.0)
        if mode == "F":
            lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
            a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
            top = 1.0
        return np.clip(np.round(a / top * 255.0), 0, 255).astype(np.uint8)
    elif mode == "1":
        im = im.convert("L")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
    if im.mode in ("LA", "PA", "La"):
        im = im.convert("LA")
        a = np.asarray(im, dtype=np.float32)
        grey = a[..., 0] * (a[..., 1] / 255.0) + 255.0 * (1.0 - a[..., 1] / 255.0)
        return np.clip(np.round(grey), 0, 255).astype(np.uint8)
    if im.mode in ("RGBA", "RGBa"):
        im = im.convert("RGBA")
        a = np.asarray(im, dtype=np.float32)
        alpha = a[..., 3:4] / 255.0
        rgb = a[..., :3] * alpha + 255.0 * (1.0 - alpha)
        return np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
