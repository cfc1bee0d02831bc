#!/usr/bin/env python3
"""Regenerates Tests/MediaTests/Fixtures/images: encoded variants of scikit-image's sample photos and what Pillow
(the reference) makes of them, for the Swift decoder and preprocessing to reproduce.

- decode/*: small crops saved as baseline, progressive, grayscale, CMYK and EXIF-oriented (2…8) JPEGs, and RGB,
  palette+tRNS, gray+alpha, RGBA and 16-bit PNGs; each with `<name>.rgb`, the raw 8-bit RGB Pillow decodes
  (EXIF orientation applied, alpha composited over white; 16-bit samples cut to their high byte).
- preprocess/*: whole photos as JPEG, each with `<name>.crop.png`, Pillow's resize of the shorter side to
  256 (BILINEAR, longer side truncated) and centre crop 224 (torchvision's rounding).
- bomb.png: a valid header declaring 50000×50000 pixels over a few bytes of data.

Needs Pillow, scikit-image and numpy (e.g. `.cache/bench-venv/bin/pip install pillow scikit-image`):
    .cache/bench-venv/bin/python scripts/make-image-fixtures.py
"""
import os
import shutil
import struct
import zlib

import numpy as np
import skimage.data
from PIL import Image, ImageOps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "MediaTests", "Fixtures", "images")


def png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def write_png16(path, array):
    """A 16-bit big-endian PNG (gray or RGB) by hand: Pillow cannot write 16-bit RGB."""
    height, width = array.shape[:2]
    color = 2 if array.ndim == 3 else 0
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in array)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, color, 0, 0, 0))
    data += png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b"")
    open(path, "wb").write(data)


def over_white(image):
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def pillow_rgb(path):
    image = Image.open(path)
    image = ImageOps.exif_transpose(image)
    return over_white(image) if image.mode in ("RGBA", "LA", "P", "PA") else image.convert("RGB")


def save_decode_case(name, writer, expected=None):
    path = os.path.join(OUT, "decode", name)
    writer(path)
    rgb = expected if expected is not None else np.asarray(pillow_rgb(path), dtype=np.uint8)
    open(path + ".rgb", "wb").write(struct.pack("<II", rgb.shape[1], rgb.shape[0]) + rgb.tobytes())


def resize_and_crop(image, shorter=256, crop=224):
    w, h = image.size
    size = (shorter, int(shorter * h / w)) if w <= h else (int(shorter * w / h), shorter)
    resized = image.resize(size, Image.BILINEAR)
    top, left = int(round((size[1] - crop) / 2.0)), int(round((size[0] - crop) / 2.0))
    return resized.crop((left, top, left + crop, top + crop))


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(os.path.join(OUT, "decode"))
    os.makedirs(os.path.join(OUT, "preprocess"))

    cat = Image.fromarray(skimage.data.chelsea()).crop((150, 40, 246, 104))        # 96×64
    coffee = Image.fromarray(skimage.data.coffee()).crop((200, 100, 280, 150))     # 80×50

    save_decode_case("baseline.jpg", lambda p: cat.save(p, quality=90))
    save_decode_case("progressive.jpg", lambda p: coffee.save(p, quality=85, progressive=True))
    save_decode_case("gray.jpg", lambda p: cat.convert("L").save(p, quality=90))
    save_decode_case("cmyk.jpg", lambda p: coffee.convert("CMYK").save(p, quality=95))
    save_decode_case("subsampled-420.jpg", lambda p: coffee.save(p, quality=75, subsampling=2))
    for orientation in range(2, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        save_decode_case(f"orientation-{orientation}.jpg", lambda p: cat.save(p, quality=90, exif=exif.tobytes()))
    save_decode_case("rgb.png", lambda p: coffee.save(p))
    palette = cat.convert("P", palette=Image.ADAPTIVE, colors=32)
    save_decode_case("palette-trns.png", lambda p: palette.save(p, transparency=3))
    gray_alpha = Image.merge("LA", (cat.convert("L"), Image.linear_gradient("L").resize(cat.size)))
    save_decode_case("gray-alpha.png", lambda p: gray_alpha.save(p))
    rgba = coffee.copy()
    rgba.putalpha(Image.linear_gradient("L").rotate(90).resize(coffee.size))
    save_decode_case("rgba.png", lambda p: rgba.save(p))
    deep = np.asarray(coffee, dtype=np.uint16) * 257 + np.arange(80, dtype=np.uint16)[None, :, None]
    save_decode_case("rgb16.png", lambda p: write_png16(p, deep), expected=(deep >> 8).astype(np.uint8))
    gray16 = np.asarray(cat.convert("L"), dtype=np.uint16) * 256 + 200
    save_decode_case("gray16.png", lambda p: write_png16(p, gray16),
                     expected=np.repeat((gray16 >> 8).astype(np.uint8)[:, :, None], 3, axis=2))

    photos = {"cat": skimage.data.chelsea(), "coffee": skimage.data.coffee(), "rocket": skimage.data.rocket()}
    for name, array in photos.items():
        image = Image.fromarray(array)
        path = os.path.join(OUT, "preprocess", f"{name}.jpg")
        image.save(path, quality=85)
        resize_and_crop(pillow_rgb(path)).save(path + ".crop.png")

    ihdr = struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    open(os.path.join(OUT, "bomb.png"), "wb").write(bomb + png_chunk(b"IEND", b""))
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT}: {total // 1024} KiB")


if __name__ == "__main__":
    main()
