"""What an image hashes to, for the leakage audit (`ferlib.audit.leakage`), and a cache of the hashes.

Every image is decoded, converted to grayscale (so RGB and grayscale copies look alike) and hashed:

* exact: a digest of the grayscale pixels and their shape (identical decoded pixels at the same size);
* near: two 256-bit perceptual hashes, imagehash's ``phash(hash_size=16, highfreq_factor=2)`` computed for a whole
  batch at once, of the grey image as it is and of it histogram-equalized;
* mirrored: the same hashes of the left-right flipped image.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.fftpack
from PIL import Image

from ferlib.data.decode import DecodeError
from ferlib.data.manifest import decoded
from ferlib.data.preprocess import equalize_grey
from ferlib.runtime.files import atomic_path, read_cache
from ferlib.runtime.progress import bar as progress_bar

HASH_SIZE = 16  # 16x16 DCT coefficients: 256 bits
HIGHFREQ_FACTOR = 2  # the DCT runs on a (HASH_SIZE * 2)-pixel square image
HASH_BITS = HASH_SIZE * HASH_SIZE
HASH_WORDS = HASH_BITS // 64
HASH_VERSION = 2  # bump when the hash changes, so cached hashes are recomputed (2: a second, equalized, hash)
VIEWS = ("plain", "equalized")  # the images hashed: the grey image as it is, and histogram-equalized


@dataclass
class HashTable:
    """Hashes of a list of images: paths, exact digests, phash and mirrored phash words, skipped files."""

    paths: np.ndarray  # (n,) str
    exact: np.ndarray  # (n,) str: digest of the grayscale pixels and shape
    phash: np.ndarray  # (n, len(VIEWS), HASH_WORDS) uint64: phash of each view
    mirror: np.ndarray  # (n, len(VIEWS), HASH_WORDS) uint64: phash of each view of the flipped image
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) of files not hashed

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, index: np.ndarray | list[int]) -> HashTable:
        """Return the rows at the given positions (skipped files are not carried over)."""
        index = np.asarray(index, dtype=np.int64)
        return HashTable(self.paths[index], self.exact[index], self.phash[index], self.mirror[index])

    def select(self, paths: Iterable[str]) -> HashTable:
        """Return the rows for these paths, in their order; raise KeyError for a path not hashed."""
        where = {p: i for i, p in enumerate(self.paths)}
        return self.take([where[p] for p in paths])


def to_gray(image: np.ndarray) -> np.ndarray:
    """Return a uint8 (h, w) grayscale copy of an RGB, RGBA or grayscale uint8 image (ITU-R 601 luma)."""
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    return np.asarray(Image.fromarray(np.ascontiguousarray(image[:, :, :3]), mode="RGB").convert("L"))


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Return (n, bits/64) uint64 words holding (n, bits) booleans, first bit most significant."""
    return np.packbits(bits, axis=1).view(">u8").astype(np.uint64)


def hash_images(images: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (exact digests, phash words, mirrored phash words) for images (RGB or grayscale uint8); the
    perceptual hashes are (n, len(VIEWS), HASH_WORDS): of the grey image and of it histogram-equalized."""
    side = HASH_SIZE * HIGHFREQ_FACTOR
    digests, small = [], []
    for image in images:
        gray = to_gray(image)
        exact = hashlib.blake2b(str(gray.shape).encode(), digest_size=16)  # equal for identical pixels and size
        exact.update(np.ascontiguousarray(gray).tobytes())
        digests.append(exact.hexdigest())
        small += [np.asarray(Image.fromarray(view, mode="L").resize((side, side), Image.Resampling.LANCZOS))
                  for view in (gray, equalize_grey(gray))]  # resized as imagehash resizes
    small = np.stack(small) if small else np.zeros((0, side, side), dtype=np.uint8)  # (n * views, 32, 32)

    def words(images: np.ndarray) -> np.ndarray:
        """Return imagehash.phash's bits, packed: the 16x16 lowest DCT frequencies against their median."""
        dct = scipy.fftpack.dct(scipy.fftpack.dct(images.astype(np.float64), axis=1), axis=2)
        low = dct[:, :HASH_SIZE, :HASH_SIZE].reshape(len(images), HASH_BITS)
        return pack_bits(low > np.median(low, axis=1, keepdims=True)).reshape(-1, len(VIEWS), HASH_WORDS)

    return np.array(digests, dtype=str), words(small), words(np.ascontiguousarray(small[:, :, ::-1]))


def read_gray(paths: Iterable[str]) -> list[np.ndarray]:
    """Return the grayscale pixels of image files or CSV rows; raise DecodeError naming a bad one."""
    out = []
    for path, image, reason in decoded([str(p) for p in paths]):
        if image is None:
            raise DecodeError(f"{path}: {reason}")
        out.append(to_gray(image))
    return out


def hash_paths(paths: Iterable[str], cache_dir: Path | None = None, progress: bool = True) -> HashTable:
    """Return the HashTable of image files (or CSV rows), cached on disk by paths, sizes and mtimes."""
    paths = [str(p) for p in paths]
    cache_file = None
    if cache_dir is not None:  # keyed by the paths, their sizes and mtimes, and the hash version
        key = hashlib.sha1(f"audit-v{HASH_VERSION}".encode())
        for p in paths:
            try:
                st = Path(p.rsplit("#", 1)[0] if ".csv#" in p else p).stat()
                key.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            except OSError:
                key.update(f"{p}|missing\n".encode())
        cache_file = Path(cache_dir) / "audit" / f"hashes-{key.hexdigest()[:16]}.npz"
        cached = read_cache(cache_file, lambda path: _load(path, len(paths)), "image hashes")
        if cached is not None:
            return cached
    kept: list[str] = []
    skipped: list[tuple[str, str]] = []

    def images() -> Iterator[np.ndarray]:
        for path, image, reason in progress_bar(decoded(paths), total=len(paths), desc="hash images",
                                        disable=not progress):
            if image is None:
                skipped.append((path, reason))
            else:
                kept.append(path)
                yield image

    exact, phash, mirror = hash_images(images())  # streams: only the 32x32 hash inputs are kept
    table = HashTable(np.array(kept, dtype=str), exact, phash, mirror, skipped)
    if cache_file is not None:
        _save(cache_file, table)
    return table


def _save(path: Path, table: HashTable) -> None:
    with atomic_path(path, what="image hashes") as tmp:
        np.savez(tmp, paths=table.paths, exact=table.exact, phash=table.phash, mirror=table.mirror,
                 skipped=np.array(json.dumps(table.skipped)))


def _load(path: Path, n_paths: int) -> HashTable:
    """Return a cached HashTable, checking that its arrays agree and cover all `n_paths` paths."""
    with np.load(path) as f:
        table = HashTable(f["paths"], f["exact"], f["phash"], f["mirror"],
                          [tuple(s) for s in json.loads(str(f["skipped"]))])
    if not len(table.paths) == len(table.exact) == len(table.phash) == len(table.mirror):
        raise ValueError("its arrays differ in length")
    if table.phash.shape[1:] != (len(VIEWS), HASH_WORDS) or table.mirror.shape != table.phash.shape:
        raise ValueError(f"hashes of shape {table.phash.shape}, expected (n, {len(VIEWS)}, {HASH_WORDS})")
    if len(table.paths) + len(table.skipped) != n_paths:
        raise ValueError(f"{len(table.paths)} hashed and {len(table.skipped)} skipped of {n_paths} images")
    return table
