"""A built-in image dataset drawn on the fly: ten classes of shapes, no download needed.

Every image is one shape (circle, ring, square, frame, triangle, cross, star, bar,
crescent, heart) in a random colour on a random background colour, with random size,
rotation and position, then Gaussian pixel noise. The same seed always gives the
same images. Shapes are drawn at twice the resolution and averaged down, so edges
are smooth; numpy vectorises every shape over a whole chunk of images at once.
"""

from __future__ import annotations

import numpy as np

from engine.image_data import ImageSet

CLASS_NAMES = ("circle", "ring", "square", "frame", "triangle", "cross", "star", "bar", "crescent", "heart")

SUPERSAMPLE = 2  # draw at 2x and average 2x2 blocks: anti-aliased edges
CHUNK = 512  # images drawn together (bounds memory at about 50 MB for 64 x 64)


def _inside(label: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Mask of class ``label`` in shape coordinates (unit radius, centred, already rotated)."""
    r2 = u * u + v * v
    if label == 0:  # circle
        return r2 <= 1.0
    if label == 1:  # ring
        return (r2 <= 1.0) & (r2 >= 0.55 ** 2)
    if label == 2:  # square
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if label == 3:  # frame: a hollow square
        m = np.maximum(np.abs(u), np.abs(v))
        return (m <= 0.85) & (m >= 0.52)
    if label == 4:  # equilateral triangle: inside three half-planes
        inside = np.ones(u.shape, bool)
        for k in range(3):
            angle = np.pi / 2 + 2 * np.pi * k / 3
            inside &= u * np.cos(angle) + v * np.sin(angle) <= 0.5
        return inside
    if label == 5:  # cross (plus sign)
        au, av = np.abs(u), np.abs(v)
        return ((au <= 0.28) & (av <= 0.95)) | ((av <= 0.28) & (au <= 0.95))
    if label == 6:  # five-pointed star: the radius swings with the angle
        theta = np.arctan2(v, u)
        # A triangle wave in the angle gives straight-ish edges between five tips.
        phase = np.abs(((theta * 5 / (2 * np.pi)) % 1.0) - 0.5) * 2  # 1 at tips, 0 between
        return np.sqrt(r2) <= 0.42 + 0.58 * phase
    if label == 7:  # bar: a long thin rectangle
        return (np.abs(u) <= 0.95) & (np.abs(v) <= 0.24)
    if label == 8:  # crescent: a disc with an offset disc removed
        return (r2 <= 1.0) & ((u - 0.45) ** 2 + v * v > 0.78 ** 2)
    if label == 9:  # heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, scaled to fit the unit disc
        x, y = u * 1.25, -v * 1.25 + 0.15
        return (x * x + y * y - 1) ** 3 - x * x * y ** 3 <= 0
    raise ValueError(f"no shape class {label}")


def render(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:  # -> (N, 3, size, size) uint8
    """Draw one random shape of each class in ``labels``."""
    n = len(labels)
    big = size * SUPERSAMPLE
    # Pixel centres in [-1, 1].
    axis = (np.arange(big, dtype=np.float32) + 0.5) / big * 2 - 1
    yy, xx = np.meshgrid(axis, axis, indexing="ij")  # (big, big)
    radius = rng.uniform(0.35, 0.7, n).astype(np.float32)  # half the image is 1.0
    room = 1.0 - radius * 0.95  # keep most of the shape inside the frame
    cx = rng.uniform(-1, 1, n).astype(np.float32) * room
    cy = rng.uniform(-1, 1, n).astype(np.float32) * room
    angle = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    dx = (xx[None] - cx[:, None, None]) / radius[:, None, None]
    dy = (yy[None] - cy[:, None, None]) / radius[:, None, None]
    u = dx * cos + dy * sin
    v = -dx * sin + dy * cos
    mask = np.zeros((n, big, big), bool)
    for label in np.unique(labels):
        rows = labels == label
        mask[rows] = _inside(int(label), u[rows], v[rows])
    # Average SUPERSAMPLE x SUPERSAMPLE blocks: coverage in [0, 1] per output pixel.
    cover = mask.reshape(n, size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(2, 4), dtype=np.float32)
    background = rng.uniform(0, 1, (n, 3, 1, 1)).astype(np.float32)
    # Each channel of the shape differs from the background's by 0.35-0.65 (cyclically): always visible.
    foreground = (background + rng.uniform(0.35, 0.65, (n, 3, 1, 1))) % 1.0
    image = background + (foreground - background) * cover[:, None]
    noise = rng.uniform(0.0, 0.08, (n, 1, 1, 1)).astype(np.float32)
    image += rng.standard_normal(image.shape, dtype=np.float32) * noise
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def make_shapes(count: int, size: int = 32, seed: int = 0) -> ImageSet:
    """``count`` images of ``size`` x ``size``, classes balanced and shuffled, fixed by ``seed``."""
    if size < 8:
        raise ValueError(f"Shapes need at least 8 x 8 pixels, got {size}.")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % len(CLASS_NAMES)).astype(np.int64)
    images = np.empty((count, 3, size, size), np.uint8)
    for start in range(0, count, CHUNK):
        images[start: start + CHUNK] = render(labels[start: start + CHUNK], size, rng)
    return ImageSet(images, labels, CLASS_NAMES)
