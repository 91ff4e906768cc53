"""Sample images for the convolution playground, drawn by this code (so free to ship and reuse:
CC0, made by the Backprop Studio project). Each has structure a kernel can find: edges in every
direction, flat regions, corners, fine detail and colour."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SOURCE_NOTE = "Drawn by Backprop Studio (engine/samples.py); CC0, free to reuse."


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def _noise(a: np.ndarray, amount: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(a.astype(np.float32) + rng.normal(0, amount, a.shape), 0, 255).astype(np.uint8)


def shapes() -> np.ndarray:  # (320, 320, 3)
    im = Image.new("RGB", (320, 320))
    px = np.linspace(0, 1, 320)
    bg = np.stack(np.broadcast_arrays(60 + 120 * px[None, :], 90 + 80 * px[:, None], np.full((320, 320), 150.0)), -1)
    im = Image.fromarray(bg.astype(np.uint8))
    d = ImageDraw.Draw(im)
    d.ellipse((30, 30, 140, 140), fill=(230, 60, 50))
    d.rectangle((180, 40, 290, 130), fill=(250, 210, 40))
    d.polygon([(60, 290), (150, 170), (200, 290)], fill=(40, 170, 90))
    star = [(245 + (50 if k % 2 == 0 else 22) * math.cos(math.pi * k / 5 - math.pi / 2),
             235 + (50 if k % 2 == 0 else 22) * math.sin(math.pi * k / 5 - math.pi / 2)) for k in range(10)]
    d.polygon(star, fill=(250, 250, 250))
    d.line((10, 160, 310, 150), fill=(20, 20, 60), width=3)
    return _noise(np.asarray(im), 4, 1)


def skyline() -> np.ndarray:  # (288, 384, 3)
    w, h = 384, 288
    sky = np.linspace(0, 1, h)[:, None]
    base = np.stack([20 + 60 * sky, 30 + 90 * sky, 80 + 120 * sky], -1) * np.ones((1, w, 1))
    im = Image.fromarray(base.astype(np.uint8))
    d = ImageDraw.Draw(im)
    d.ellipse((300, 30, 350, 80), fill=(245, 240, 210))
    rng = np.random.default_rng(7)
    x = 0
    while x < w:
        bw, bh = int(rng.integers(30, 70)), int(rng.integers(80, 230))
        shade = int(rng.integers(25, 60))
        d.rectangle((x, h - bh, x + bw, h), fill=(shade, shade, shade + 10))
        for wy in range(h - bh + 8, h - 10, 14):
            for wx in range(x + 5, x + bw - 8, 11):
                if rng.random() < 0.55:
                    d.rectangle((wx, wy, wx + 5, wy + 7), fill=(250, 220, 120))
        x += bw + int(rng.integers(0, 6))
    return _noise(np.asarray(im), 3, 2)


def text_and_stripes() -> np.ndarray:  # (320, 320) grey
    im = Image.new("L", (320, 320), 235)
    d = ImageDraw.Draw(im)
    for k in range(0, 160, 12):  # vertical stripes
        d.rectangle((k, 0, k + 5, 100), fill=40)
    for k in range(0, 100, 12):  # horizontal stripes
        d.rectangle((170, k, 320, k + 5), fill=40)
    for k in range(-320, 320, 14):  # diagonal stripes
        d.line((k, 320, k + 200, 120), fill=90, width=4)
    for r in range(6):  # checkerboard
        for c in range(6):
            if (r + c) % 2 == 0:
                d.rectangle((20 + 16 * c, 130 + 16 * r, 35 + 16 * c, 145 + 16 * r), fill=0)
    d.text((130, 135), "conv", fill=0, font=_font(56))
    im = im.filter(ImageFilter.GaussianBlur(0.6))
    return _noise(np.asarray(im), 3, 3)


def flower() -> np.ndarray:  # (320, 320, 3)
    yy, xx = np.mgrid[0:320, 0:320].astype(np.float32)
    r = np.hypot(xx - 160, yy - 165)
    theta = np.arctan2(yy - 165, xx - 160)
    petal = 100 + 25 * np.cos(7 * theta)
    inside = r < petal
    centre = r < 32
    img = np.zeros((320, 320, 3), np.float32)
    img[...] = (60, 110, 50)  # leaves-green background
    img[..., 1] += 30 * np.sin(xx / 17) * np.cos(yy / 23)
    shade = np.clip(1.0 - r / (petal + 1), 0, 1)[..., None]
    img = np.where(inside[..., None], np.array([200, 70, 150]) * (0.6 + 0.4 * shade), img)
    img = np.where(centre[..., None], np.array([240, 200, 40]) * (0.8 + 0.2 * np.cos(r / 3))[..., None], img)
    blurred = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2))
    return _noise(np.asarray(blurred), 2, 4)


SAMPLES = {"Shapes (colour)": shapes, "Skyline (colour)": skyline, "Stripes and text (grey)": text_and_stripes,
           "Flower (colour)": flower}


@lru_cache(maxsize=None)
def _cached(name: str) -> np.ndarray:
    image = SAMPLES[name]()
    image.setflags(write=False)
    return image


def sample(name: str) -> np.ndarray:
    """A sample image, (H, W) or (H, W, 3) uint8 (read-only; copy to modify)."""
    if name not in SAMPLES:
        raise KeyError(f"Unknown sample {name!r}; choose one of {', '.join(SAMPLES)}.")
    return _cached(name)
