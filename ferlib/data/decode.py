"""Robust image decoding: any size and mode, EXIF orientation, format sniffed from content.

Every failure becomes a `DecodeError` with a short, human-readable reason, so the data layer can
skip the file and report it instead of crashing deep inside TensorFlow.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# A truncated file is an error, never a silently grey-padded image.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Images larger than this many pixels are refused before their pixels are decoded (decompression bombs:
# a small file that claims a huge image). 150 MP takes any phone photo up to 108 MP sensors' full-resolution
# files (48 MP is common); it is below Pillow's own hard limit (about 179 MP), which would refuse first.
MAX_PIXELS = 150_000_000


class DecodeError(ValueError):
    """A file that cannot be used as an image; `reason` says why in a few words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    """What the header and pixels of one decoded image say about it."""

    width: int
    height: int
    mode: str
    format: str
    n_bytes: int
    sha1: str
    pixel_hash: str


def _to_rgb(img: Image.Image) -> Image.Image:
    """Return an 8-bit RGB copy of any PIL image (16-bit scaled, alpha composited on white)."""
    if img.mode.startswith("I") or img.mode == "F":  # 16-bit, 32-bit integer or float single-channel data
        arr = np.asarray(img).astype(np.float64)
        peak = float(arr.max()) if arr.size else 0.0
        if img.mode.startswith("I;16") or 255.0 < peak <= 65535.0:
            top = 65535.0
        elif peak > 65535.0:
            top = peak
        else:
            top = 1.0 if img.mode == "F" and peak <= 1.0 else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L").convert("RGB")
    if img.mode in ("LA", "La", "PA", "RGBA", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img.convert("RGBA")).convert("RGB")
    return img.convert("RGB")


def open_image(data: bytes, draft_side: int | None = None) -> tuple[Image.Image, str, str]:
    """Return (RGB image, original mode, format) for encoded bytes, or raise DecodeError.

    With `draft_side`, a JPEG whose longer side is more than twice that is decoded at a reduced scale (1/2,
    1/4 or 1/8: JPEG's own fast path, PIL `draft`) whose sides stay at least `draft_side`; the image's
    `info["decode_scale"]` then says how many full-size pixels one decoded pixel spans (1.0 otherwise)."""
    if len(data) == 0:
        raise DecodeError("empty file (0 bytes)")
    try:
        # Pillow warns from about 89 MP; the size check below is ours, so its warning is not needed
        with warnings.catch_warnings(action="ignore", category=Image.DecompressionBombWarning):
            img = Image.open(io.BytesIO(data))
            fmt = img.format or "unknown"
            mode = img.mode
            w, h = img.size
            if w <= 0 or h <= 0:
                raise DecodeError(f"invalid image size {w}x{h}")
            if w * h > MAX_PIXELS:
                raise DecodeError(f"oversized image {w}x{h} ({w * h:,} pixels > {MAX_PIXELS:,} allowed)")
            img.seek(0)  # first frame of animations and multi-page files
            if draft_side and fmt in ("JPEG", "MPO") and max(w, h) > 2 * draft_side:  # MPO: phones' JPEGs
                img.draft(img.mode, (draft_side, draft_side))
            scale = max(w, h) / max(img.size)
            turned = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # EXIF orientations that swap the sides
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb(img)
            rgb.info["full_size"] = (h, w) if turned else (w, h)
    except DecodeError:
        raise
    except UnidentifiedImageError:
        raise DecodeError("not an image (format not recognised)") from None
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"oversized image (decompression bomb): {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = str(exc)
        if "truncated" in text.lower():
            raise DecodeError("truncated image file") from None
        raise DecodeError(f"corrupt image data ({text[:80]})") from None
    rgb.info["decode_scale"] = scale
    return rgb, mode, fmt


def _read_bytes(path: str | Path) -> bytes:
    """Return a file's bytes, or raise DecodeError saying why they cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DecodeError("file not found") from None
    except IsADirectoryError:
        raise DecodeError("is a directory, not a file") from None
    except OSError as exc:
        raise DecodeError(f"unreadable file ({exc.strerror or exc})") from None


def read_photo(path: str | Path, draft_side: int = 2048) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Return (uint8 HxWx3 RGB array, scale, full size (width, height)) for a photo to find faces in, a large JPEG
    (a phone's 48 MP) decoded several times faster at a reduced scale (`open_image`); raise DecodeError."""
    rgb, _, _ = open_image(_read_bytes(path), draft_side=draft_side)
    return np.asarray(rgb, dtype=np.uint8), float(rgb.info["decode_scale"]), rgb.info["full_size"]


def read_image(path: str | Path) -> tuple[np.ndarray, ImageInfo]:
    """Return (uint8 HxWx3 RGB array, ImageInfo) for an image file, or raise DecodeError."""
    data = _read_bytes(path)
    rgb, mode, fmt = open_image(data)
    arr = np.asarray(rgb, dtype=np.uint8)
    return arr, ImageInfo(arr.shape[1], arr.shape[0], mode, fmt, len(data), hashlib.sha1(data).hexdigest(),
                          pixel_hash(arr))


def pixel_hash(arr: np.ndarray) -> str:
    """Return a hash of decoded pixels: equal for identical images whatever their file format."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    h = hashlib.sha1(str(arr.shape).encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def resize_rgb(arr: np.ndarray, size: int) -> np.ndarray:
    """Return the RGB array resized to size x size (bilinear, antialiased when shrinking)."""
    if arr.shape[0] == size and arr.shape[1] == size:
        return arr
    img = Image.fromarray(arr, mode="RGB").resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(img, dtype=np.uint8)


ImageInput = str | Path | Image.Image | np.ndarray | bytes


def image_to_rgb(image: ImageInput) -> np.ndarray:
    """Return a uint8 HxWx3 RGB array for a path, encoded bytes, PIL image or array; raise DecodeError."""
    if isinstance(image, (str, Path)):
        return read_image(image)[0]
    if isinstance(image, (bytes, bytearray)):
        return np.asarray(open_image(bytes(image))[0], dtype=np.uint8)
    if isinstance(image, Image.Image):
        return np.asarray(_to_rgb(ImageOps.exif_transpose(image)), dtype=np.uint8)  # EXIF orientation applied
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a path, bytes, a PIL image or an array, got {type(image).__name__}")
    arr = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image  # HxW, HxWx3 or HxWx4 from here
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))) or arr.size == 0:
        raise DecodeError(f"not an image array: shape {arr.shape} (expected HxW, HxWx1, HxWx3 or HxWx4)")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):  # floats in [0, 1] are scaled to 0-255
        if not np.isfinite(arr).all():
            raise DecodeError("not an image array: contains NaN or infinite values")
        arr = arr * 255.0 if arr.max() <= 1.0 else arr
    elif not np.issubdtype(arr.dtype, np.integer):
        raise DecodeError(f"not an image array: dtype {arr.dtype}")
    arr = np.clip(np.rint(arr) if arr.dtype.kind == "f" else arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape[2] == 4:  # composite on white, as open_image does for RGBA files
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        return np.rint(arr[:, :, :3] * alpha + 255.0 * (1 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(arr)
