"""Reading a user's image files: orientation, bit depth, the pixel limit, what counts as an image,
sizes that differ, corrupt files, and folders that would lose images (vislib.image_files)."""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from vislib import data, image_files
from vislib.image_files import (ImageTooLargeError, UnreadableImageError, folder_entries, load_image_folder,
                                read_image, read_images)

RED, GREEN, BLUE, WHITE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 1.0, 1.0)


def _quadrants() -> np.ndarray:
    """16 x 32 (h x w) uint8 RGB: top-left red, top-right green, bottom-left blue, bottom-right white."""
    img = np.zeros((16, 32, 3), np.uint8)
    img[:8, :16], img[:8, 16:], img[8:, :16], img[8:, 16:] = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
    return img


def _corner_colours(t: torch.Tensor) -> list[tuple[float, ...]]:
    """Colours at the centres of the four quadrants of a [3, H, W] tensor: TL, TR, BL, BR."""
    _, h, w = t.shape
    pts = [(h // 4, w // 4), (h // 4, 3 * w // 4), (3 * h // 4, w // 4), (3 * h // 4, 3 * w // 4)]
    return [tuple(t[:, y, x].tolist()) for y, x in pts]


# Hand-derived from the EXIF definition: 2 = mirrored, 3 = turned 180 degrees, 6 = shown turned
# 90 degrees clockwise (the stored left column becomes the top row), 8 = 90 degrees anticlockwise.
ORIENTED = {1: ((16, 32), [RED, GREEN, BLUE, WHITE]),
            2: ((16, 32), [GREEN, RED, WHITE, BLUE]),
            3: ((16, 32), [WHITE, BLUE, GREEN, RED]),
            6: ((32, 16), [BLUE, RED, WHITE, GREEN]),
            8: ((32, 16), [GREEN, WHITE, RED, BLUE])}


@pytest.mark.parametrize("orientation", sorted(ORIENTED))
def test_jpeg_exif_orientation_is_applied(tmp_path, orientation):
    path = tmp_path / f"o{orientation}.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(_quadrants()).save(path, "JPEG", quality=100, exif=exif.tobytes())
    img = read_image(path)
    (h, w), colours = ORIENTED[orientation]
    assert img.shape == (3, h, w)
    for got, want in zip(_corner_colours(img), colours):
        assert np.allclose(got, want, atol=0.08), (orientation, got, want)
    # cv2, which the loader used before, ignores the tag: the check above is not vacuous
    raw = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    assert raw.shape[:2] == (16, 32)


def test_16_bit_png_and_tiff_are_scaled_by_65535(tmp_path):
    ramp = (np.arange(60, dtype=np.uint16) * 1111).reshape(6, 10)
    for name in ("g16.png", "g16.tif"):
        cv2.imwrite(str(tmp_path / name), ramp)
        img = read_image(tmp_path / name)
        assert img.shape == (3, 6, 10)
        assert torch.allclose(img[0], torch.from_numpy(ramp / 65535.0).float(), atol=1e-6)
        assert torch.equal(img[0], img[2])  # grey becomes RGB
    # a 16-bit PNG with an EXIF orientation: turned (6 = 90 degrees clockwise) and still / 65535
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(ramp).save(tmp_path / "o16.png", exif=exif.tobytes())
    turned = read_image(tmp_path / "o16.png")[0]
    assert turned.shape == (10, 6)
    assert torch.allclose(turned, torch.from_numpy(ramp[::-1].T / 65535.0).float(), atol=1e-6)


def test_float_tiff_is_taken_as_it_is_not_divided_by_255(tmp_path):
    values = np.linspace(0.0, 1.0, 24, dtype=np.float32).reshape(4, 6)
    Image.fromarray(values, mode="F").save(tmp_path / "f.tif")
    img = read_image(tmp_path / "f.tif")
    assert torch.allclose(img[1], torch.from_numpy(values), atol=1e-7)
    # a float image outside [0, 1] is not guessed at: it is refused with its range
    Image.fromarray(values * 255, mode="F").save(tmp_path / "f255.tif")
    with pytest.raises(UnreadableImageError, match=r"f255.tif.*\[0, 255\].*\[0, 1\]"):
        read_image(tmp_path / "f255.tif")
    Image.fromarray(np.full((4, 6), np.nan, np.float32), mode="F").save(tmp_path / "nan.tif")
    with pytest.raises(UnreadableImageError, match="nan.tif.*NaN"):
        read_image(tmp_path / "nan.tif")


def test_32_bit_integer_tiff_is_scaled_by_the_int32_range(tmp_path):
    Image.fromarray(np.full((3, 5), 2 ** 30, np.int32), mode="I").save(tmp_path / "i32.tif")
    img = read_image(tmp_path / "i32.tif")
    assert torch.allclose(img, torch.full((3, 3, 5), 2 ** 30 / (2 ** 31 - 1)), atol=1e-6)


def test_8_bit_grey_rgba_and_palette_images(tmp_path):
    Image.fromarray(np.full((4, 4), 51, np.uint8), mode="L").save(tmp_path / "g.png")
    Image.fromarray(np.full((4, 4, 4), (255, 0, 102, 7), np.uint8), mode="RGBA").save(tmp_path / "a.png")
    pal = Image.new("P", (4, 4))
    pal.putpalette([0, 0, 0, 255, 204, 0] + [0] * 762)
    pal.putpixel((1, 1), 1)
    pal.save(tmp_path / "p.png")
    assert torch.allclose(read_image(tmp_path / "g.png"), torch.full((3, 4, 4), 0.2))
    a = read_image(tmp_path / "a.png")   # alpha dropped
    assert torch.allclose(a[:, 0, 0], torch.tensor([1.0, 0.0, 0.4]))
    p = read_image(tmp_path / "p.png")
    assert torch.allclose(p[:, 1, 1], torch.tensor([1.0, 0.8, 0.0])) and p[:, 0, 0].eq(0).all()


def _png_header_only(path, width: int, height: int) -> None:
    """A PNG whose header announces width x height but whose pixel data is a few bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_pixel_limit_is_checked_before_decoding(tmp_path, monkeypatch):
    big = tmp_path / "huge.png"
    _png_header_only(big, 8000, 8000)          # 64 M pixels announced, 100 bytes on disk
    assert big.stat().st_size < 200

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("the image was decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageTooLargeError, match=r"huge.png is 8000 x 8000 = 64.0 M pixels.*limit of 40 M.*"
                                                 r"max_pixels=64000000"):
        read_image(big)
    monkeypatch.undo()
    assert image_files.MAX_IMAGE_PIXELS == 40_000_000
    # with the limit raised the header passes and the missing pixel data is what fails, named
    with pytest.raises(UnreadableImageError, match="huge.png"):
        read_image(big, max_pixels=70_000_000)
    # a small real image against a small limit
    cv2.imwrite(str(tmp_path / "s.png"), np.zeros((10, 20, 3), np.uint8))
    with pytest.raises(ImageTooLargeError, match="s.png is 20 x 10"):
        read_image(tmp_path / "s.png", max_pixels=199)
    assert read_image(tmp_path / "s.png", max_pixels=200).shape == (3, 10, 20)
    # the limit also guards the folder loaders
    (tmp_path / "root" / "a").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "root" / "a" / "s.png"), np.zeros((10, 20, 3), np.uint8))
    with pytest.raises(ImageTooLargeError, match="s.png"):
        load_image_folder(tmp_path / "root", max_pixels=100)


@pytest.mark.parametrize("content", [b"this is not a jpeg", b""])
def test_corrupt_file_names_the_file(tmp_path, content):
    (tmp_path / "broken.jpg").write_bytes(content)
    with pytest.raises(UnreadableImageError, match="broken.jpg"):
        read_image(tmp_path / "broken.jpg")


def test_truncated_png_names_the_file(tmp_path):
    cv2.imwrite(str(tmp_path / "ok.png"), np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    raw = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(UnreadableImageError, match="cut.png"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(UnreadableImageError, match="missing.png.*does not exist"):
        read_image(tmp_path / "missing.png")


def _write(path, value: int = 0, shape=(10, 12)):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*shape, 3), value, np.uint8))


def test_hidden_appledouble_files_and_image_named_folders_are_skipped(tmp_path):
    _write(tmp_path / "cats" / "a.png", 10)
    _write(tmp_path / "dogs" / "b.png", 20)
    (tmp_path / "cats" / "._a.png").write_bytes(b"\0\5\26\7AppleDouble resource fork")  # macOS metadata
    (tmp_path / "cats" / ".hidden.jpg").write_bytes(b"not an image")
    (tmp_path / "cats" / "folder.jpg").mkdir()                                   # a folder with an image name
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    _write(tmp_path / ".ipynb_checkpoints" / "c.png")                            # a hidden class folder
    _write(tmp_path / "__MACOSX" / "cats" / "._a.png")
    images, dirs = folder_entries(tmp_path / "cats")
    assert [p.name for p in images] == ["a.png"] and [d.name for d in dirs] == ["folder.jpg"]
    ds = load_image_folder(tmp_path, size=None)
    assert ds.classes == ("cats", "dogs") and [f.name for f in ds.files] == ["a.png", "b.png"]
    assert torch.allclose(ds.images[:, 0, 0, 0], torch.tensor([10, 20]) / 255)


def test_different_sizes_without_size_name_two_files(tmp_path):
    _write(tmp_path / "a" / "1.png", shape=(10, 12))
    _write(tmp_path / "a" / "2.png", shape=(10, 12))
    _write(tmp_path / "b" / "3.png", shape=(10, 20))
    with pytest.raises(ValueError, match=r"1.png is 12 x 10 but .*3.png is 20 x 10.*size="):
        load_image_folder(tmp_path, size=None)
    assert load_image_folder(tmp_path, size=8).images.shape == (3, 3, 8, 8)
    same = read_images([tmp_path / "a" / "1.png", tmp_path / "a" / "2.png"])
    assert same.shape == (2, 3, 10, 12)


def test_folder_never_drops_images_silently(tmp_path):
    _write(tmp_path / "a" / "1.png")
    _write(tmp_path / "b" / "2.png")
    _write(tmp_path / "loose.png")
    with pytest.raises(ValueError, match="outside the class folders.*loose.png"):
        load_image_folder(tmp_path)
    (tmp_path / "loose.png").unlink()
    _write(tmp_path / "b" / "more" / "3.png")
    with pytest.raises(ValueError, match=r"sub-folders .*more/3.png"):
        load_image_folder(tmp_path)
    (tmp_path / "b" / "more" / "3.png").unlink()
    (tmp_path / "c").mkdir()
    with pytest.raises(ValueError, match=r"class folder .*c holds no image files"):
        load_image_folder(tmp_path)
    (tmp_path / "c").rmdir()
    assert len(load_image_folder(tmp_path)) == 2   # the empty sub-folder "more" is harmless


def test_bad_size_and_limit_arguments(tmp_path):
    _write(tmp_path / "a" / "1.png")
    for size in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="size must be a positive int"):
            read_image(tmp_path / "a" / "1.png", size)
    with pytest.raises(ValueError, match="max_pixels must be positive"):
        read_image(tmp_path / "a" / "1.png", max_pixels=0)


def test_the_loaders_stay_importable_from_vislib_data():
    assert data.load_image_folder is load_image_folder and data.read_image is read_image
    assert data.UnreadableImageError is UnreadableImageError and data.ImageTooLargeError is ImageTooLargeError
