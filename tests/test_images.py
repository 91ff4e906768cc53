"""engine.images.load_image: every odd file a student may try."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from engine.images import ImageLoadError, load_image

pytestmark = pytest.mark.smoke


def _png_header_only(path, width, height):
    """A PNG that declares width x height but holds almost no data (cheap 'huge' image)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))


def test_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match="not found"):
        load_image(tmp_path / "nope.png")


def test_folder(tmp_path):
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(p)


def test_text_file_named_png(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("this is not a picture\n" * 20)
    with pytest.raises(ImageLoadError, match="not an image"):
        load_image(p)


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    p = tmp_path / "cut.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageLoadError, match="corrupt or incomplete"):
        load_image(p)


def test_huge_png_refused_before_decoding(tmp_path):
    p = tmp_path / "huge.png"
    _png_header_only(p, 20000, 20000)
    with pytest.raises(ImageLoadError, match=r"too large \(400 megapixels\)"):
        load_image(p)


def test_large_png_under_pillows_own_limit_refused_by_ours(tmp_path):
    p = tmp_path / "big.png"
    _png_header_only(p, 9000, 9000)  # 81 MP: Pillow would decode it, our 50 MP limit must not
    with pytest.raises(ImageLoadError, match=r"too large: 9000 x 9000"):
        load_image(p)


def test_sixteen_bit_png_scaled_to_eight_bits(tmp_path):
    ramp = (np.arange(256, dtype=np.uint32).reshape(16, 16) * 257).astype(np.uint16)  # 0..65535
    p = tmp_path / "deep.png"
    Image.fromarray(ramp).save(p)
    assert Image.open(p).mode.startswith("I")
    out = load_image(p)
    assert out.dtype == np.uint8 and out.shape == (16, 16)
    np.testing.assert_array_equal(out, np.arange(256).reshape(16, 16))


def test_rgba_png_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red
    rgba[0, :, 3] = 255  # first row opaque
    rgba[1, :, 3] = 0  # second row transparent
    rgba[2:, :, 3] = 128  # half
    p = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(p)
    out = load_image(p)
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(out[1, 0], [255, 255, 255])
    assert abs(int(out[2, 0, 1]) - 127) <= 1  # green channel: half white


def test_grey_alpha_png(tmp_path):
    la = np.zeros((2, 2, 2), np.uint8)
    la[..., 1] = 0
    p = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(p)
    out = load_image(p)
    assert out.shape == (2, 2)
    assert (out == 255).all()


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    cmyk = Image.new("CMYK", (8, 6), (0, 255, 255, 0))  # pure red in CMYK
    p = tmp_path / "print.jpg"
    cmyk.save(p, "JPEG", quality=95)
    out = load_image(p)
    assert out.shape == (6, 8, 3)
    r, g, b = out[3, 4].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_palette_gif_with_transparency(tmp_path):
    im = Image.new("P", (4, 4), 0)
    im.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    im.putpixel((1, 1), 1)
    p = tmp_path / "pal.gif"
    im.save(p, transparency=0)
    out = load_image(p)
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])  # transparent index -> white
    np.testing.assert_array_equal(out[1, 1], [10, 200, 30])


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((10, 30), np.uint8)  # wide
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    p = tmp_path / "phone.jpg"
    im.save(p, exif=exif.tobytes())
    assert load_image(p).shape == (30, 10)


def test_grey_and_rgb_shapes(tmp_path):
    Image.fromarray(np.full((5, 7), 9, np.uint8)).save(tmp_path / "g.png")
    Image.fromarray(np.full((5, 7, 3), 9, np.uint8)).save(tmp_path / "c.bmp")
    assert load_image(tmp_path / "g.png").shape == (5, 7)
    assert load_image(tmp_path / "c.bmp").shape == (5, 7, 3)


def test_one_bit_image(tmp_path):
    im = Image.new("1", (3, 3), 1)
    im.save(tmp_path / "bw.png")
    out = load_image(tmp_path / "bw.png")
    assert out.dtype == np.uint8 and (out == 255).all()
