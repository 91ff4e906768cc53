"""Draw the app icon (a small network whose edges glow like gradients flowing back).

    python packaging/make_icon.py      # writes assets/backprop-studio.png (256 x 256) and .ico

Made by the project; CC0.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
SIZE = 256


def draw() -> Image.Image:
    scale = 4  # draw large, then downsample for smooth edges
    s = SIZE * scale
    im = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.rounded_rectangle((0, 0, s - 1, s - 1), radius=s // 6, fill=(24, 33, 58, 255))
    layers = [[0.3, 0.5, 0.7], [0.22, 0.41, 0.59, 0.78], [0.4, 0.6]]
    xs = [0.2, 0.5, 0.8]
    nodes = [[(x * s, y * s) for y in ys] for x, ys in zip(xs, layers)]
    for a, b in zip(nodes, nodes[1:]):
        for i, p in enumerate(a):
            for j, q in enumerate(b):
                warm = (i + j) % 3 == 0
                d.line((p, q), fill=(255, 140, 60, 255) if warm else (120, 170, 255, 200), width=scale * 5)
    r = 15 * scale
    for layer in nodes:
        for x, y in layer:
            d.ellipse((x - r, y - r, x + r, y + r), fill=(245, 245, 250, 255), outline=(255, 140, 60, 255),
                      width=scale * 4)
    return im.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def main() -> None:
    icon = draw()
    out = ROOT / "assets" / "backprop-studio.png"
    icon.save(out)
    icon.save(ROOT / "packaging" / "backprop-studio.ico", sizes=[(16, 16), (32, 32), (48, 48), (64, 64), (256, 256)])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
