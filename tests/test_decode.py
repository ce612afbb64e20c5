"""Decoding: every mode, EXIF orientation, content sniffing, and a clear reason for every bad file."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ferlib.data.decode import MAX_PIXELS, DecodeError, read_image, resize_rgb
from tests.conftest import face_array, write_image, write_png_claiming


@pytest.mark.parametrize("mode,fmt", [("L", "PNG"), ("LA", "PNG"), ("RGB", "JPEG"), ("RGBA", "PNG"),
                                      ("P", "PNG"), ("CMYK", "JPEG"), ("1", "PNG"), ("RGB", "WEBP"),
                                      ("L", "BMP"), ("RGB", "TIFF"), ("P", "GIF")])
def test_every_mode_decodes_to_rgb_uint8(tmp_path, mode, fmt):
    path = write_image(tmp_path / f"x.{fmt.lower()}", seed=1, size=40, mode=mode, fmt=fmt)
    arr, info = read_image(path)
    assert arr.shape == (40, 40, 3) and arr.dtype == np.uint8
    assert info.mode == mode and info.width == 40 and info.height == 40
    assert info.n_bytes == path.stat().st_size and len(info.sha1) == 40


def test_grayscale_content_survives_rgb_conversion(tmp_path):
    path = write_image(tmp_path / "g.png", seed=3, size=32)
    arr, _ = read_image(path)
    np.testing.assert_array_equal(arr[:, :, 0], face_array(3, 32))
    np.testing.assert_array_equal(arr[:, :, 0], arr[:, :, 2])


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    arr, info = read_image(path)
    assert info.mode.startswith("I")
    assert arr[0, 0, 0] == 0 and arr[-1, -1, 0] == 255
    assert 120 <= arr[32, 0, 0] <= 135  # the middle of the ramp stays in the middle


def test_rgba_transparency_is_composited_on_white(tmp_path):
    img = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    path = tmp_path / "clear.png"
    img.save(path)
    arr, _ = read_image(path)
    assert (arr == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (60, 30), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 30, 30))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif, quality=95)
    arr, info = read_image(path)
    assert (info.width, info.height) == (30, 60)  # portrait after transposing
    assert arr[:25].mean() > 200 and arr[35:].mean() < 50  # white half now on top


def test_format_is_sniffed_from_content_not_extension(tmp_path):
    png_named_jpg = write_image(tmp_path / "really_png.jpg", fmt="PNG")
    _, info = read_image(png_named_jpg)
    assert info.format == "PNG"


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"),
    (b"this is a text file, not a picture\n" * 5, "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image"),
])
def test_bad_bytes_give_clear_reasons(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(DecodeError) as err:
        read_image(path)
    assert reason in err.value.reason


def test_corrupt_png_data_is_reported(tmp_path):
    path = write_image(tmp_path / "c.png", size=64)
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 8
    data[start:start + 40] = bytes(40)  # scribble over the compressed pixels
    path.write_bytes(bytes(data))
    with pytest.raises(DecodeError) as err:
        read_image(path)
    assert "corrupt" in err.value.reason


def test_truncated_jpeg_is_reported(tmp_path):
    path = write_image(tmp_path / "t.jpg", size=200, mode="RGB", fmt="JPEG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError) as err:
        read_image(path)
    assert "truncated" in err.value.reason or "corrupt" in err.value.reason


@pytest.mark.parametrize("side", [int(MAX_PIXELS ** 0.5) + 100, 20_000])  # ours; beyond Pillow's own limit
def test_decompression_bomb_is_refused_before_decoding(tmp_path, side):
    path = write_png_claiming(tmp_path / "bomb.png", side, side)
    assert path.stat().st_size < 100  # a tiny file that claims a huge image
    with pytest.raises(DecodeError) as err:
        read_image(path)
    assert "oversized" in err.value.reason


def test_a_48_megapixel_phone_photo_is_read(tmp_path):
    path = tmp_path / "phone.jpg"
    Image.new("RGB", (8000, 6000), (90, 120, 150)).save(path, quality=80)
    rgb, info = read_image(path)
    assert rgb.shape == (6000, 8000, 3) and (info.width, info.height) == (8000, 6000)
    assert rgb[3000, 4000].tolist() == pytest.approx([90, 120, 150], abs=3)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DecodeError, match="not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(DecodeError, match="directory"):
        read_image(tmp_path)


def test_resize_keeps_dtype_and_shape():
    arr = np.zeros((48, 30, 3), dtype=np.uint8)
    out = resize_rgb(arr, 96)
    assert out.shape == (96, 96, 3) and out.dtype == np.uint8
    assert resize_rgb(out, 96) is out


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_for_faces_with_its_full_size(tmp_path):
    from ferlib.data.decode import read_photo

    path = tmp_path / "phone.jpg"
    Image.new("RGB", (8000, 6000), (90, 120, 150)).save(path, quality=80)
    rgb, scale, size = read_photo(path)
    assert rgb.shape == (3000, 4000, 3) and scale == 2.0 and size == (8000, 6000)  # sides stay >= 2,048 px
    small = tmp_path / "small.jpg"
    Image.new("RGB", (3000, 2000)).save(small)
    assert read_photo(small)[1:] == (1.0, (3000, 2000))  # not more than twice 2,048 px: read whole
    turned = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    Image.new("RGB", (6000, 4800)).save(turned, exif=exif)
    rgb, scale, size = read_photo(turned)
    assert size == (4800, 6000) and rgb.shape[:2] == (3000, 2400) and scale == 2.0


def test_a_phones_mpo_jpeg_is_decoded_at_a_reduced_scale_too(tmp_path):
    from ferlib.data.decode import read_photo

    path = tmp_path / "phone_mpo.jpg"
    first, second = Image.new("RGB", (6000, 4500), (10, 200, 30)), Image.new("RGB", (320, 240))
    first.save(path, format="MPO", save_all=True, append_images=[second])
    assert Image.open(path).format == "MPO"
    rgb, scale, size = read_photo(path)
    assert scale == 2.0 and size == (6000, 4500) and rgb.shape == (2250, 3000, 3)
