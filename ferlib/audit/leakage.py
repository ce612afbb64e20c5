"""Leakage audit: exact, near and mirrored duplicates between two sets of images.

Every image is decoded, converted to grayscale (so RGB and grayscale copies look alike) and hashed:

* exact: a digest of the grayscale pixels and their shape (identical decoded pixels at the same size);
* near: two 256-bit perceptual hashes, imagehash's ``phash(hash_size=16, highfreq_factor=2)`` (the sign of
  the 16x16 lowest DCT frequencies of the 32x32 image against their median), one of the grey image as it is and
  one of it histogram-equalized, computed for a whole batch at once. A pair's distance is the smaller of the
  two: the plain hash keeps copies that were resized, re-compressed, tinted or made brighter within a few dozen
  bits, the equalized one copies of other contrast (gamma, strong contrast changes, and equalization itself: a
  copy of FER-2013 such as its equalized public copy hashes like the original), while different faces lie about
  128 bits apart in both;
* mirrored: the same hashes of the left-right flipped image.

Pairs are found by XOR and popcount of the packed 64-bit words, in chunks (no Python double loop).
A pair is reported once, as the first kind that applies: exact, near, mirrored.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.fftpack
from PIL import Image

from ferlib.data.decode import DecodeError, read_image
from ferlib.data.manifest import build_manifest, decode_csv_pixels, skip_summary, split_train_val, usable
from ferlib.data.preprocess import equalize_grey
from ferlib.data.sources import detect_source, read_csv_pixels
from ferlib.runtime.files import atomic_path, read_cache
from ferlib.runtime.progress import bar as progress_bar

HASH_SIZE = 16  # 16x16 DCT coefficients: 256 bits
HIGHFREQ_FACTOR = 2  # the DCT runs on a (HASH_SIZE * 2)-pixel square image
HASH_BITS = HASH_SIZE * HASH_SIZE
HASH_WORDS = HASH_BITS // 64
# Chosen by `python -m ferlib bench audit --other-copy` (the smallest multiple of 4 bits at which every
# transformation of copies of 1,000 FER-2013 *training* images, and half the real pairs of FER-2013's test split
# and its equalized copy, reach 99.5% recall); it reports recall and false flags on planted copies of FER-2013
# *test* images and on the other half of the real pairs.
DEFAULT_THRESHOLD = 44
HASH_VERSION = 2  # bump when the hash changes, so cached hashes are recomputed (2: a second, equalized, hash)
VIEWS = ("plain", "equalized")  # the images hashed: the grey image as it is, and histogram-equalized
KINDS = ("exact", "near", "mirrored")
PAIR_COLUMNS = ["left", "right", "kind", "distance", "left_path", "right_path"]


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


def exact_digest(gray: np.ndarray) -> str:
    """Return a digest that is equal exactly when two grayscale images have identical pixels and size."""
    h = hashlib.blake2b(str(gray.shape).encode(), digest_size=16)
    h.update(np.ascontiguousarray(gray).tobytes())
    return h.hexdigest()


def hash_input(gray: np.ndarray) -> np.ndarray:
    """Return the 32x32 uint8 image the perceptual hash is computed from (as imagehash resizes it)."""
    side = HASH_SIZE * HIGHFREQ_FACTOR
    return np.asarray(Image.fromarray(gray, mode="L").resize((side, side), Image.Resampling.LANCZOS))


def phash_bits(small: np.ndarray) -> np.ndarray:
    """Return (n, 256) bool perceptual-hash bits of (n, 32, 32) images, equal to imagehash.phash's."""
    dct = scipy.fftpack.dct(scipy.fftpack.dct(small.astype(np.float64), axis=1), axis=2)
    low = dct[:, :HASH_SIZE, :HASH_SIZE].reshape(len(small), -1)
    return low > np.median(low, axis=1, keepdims=True)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Return (n, bits/64) uint64 words holding (n, bits) booleans, first bit most significant."""
    return np.packbits(bits, axis=1).view(">u8").astype(np.uint64)


def hash_images(images: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (exact digests, phash words, mirrored phash words) for images (RGB or grayscale uint8); the
    perceptual hashes are (n, len(VIEWS), HASH_WORDS): of the grey image and of it histogram-equalized."""
    digests, small = [], []
    for image in images:
        gray = to_gray(image)
        digests.append(exact_digest(gray))
        small.append([hash_input(gray), hash_input(equalize_grey(gray))])
    if not small:
        empty = np.zeros((0, len(VIEWS), HASH_WORDS), dtype=np.uint64)
        return np.array([], dtype=str), empty, empty.copy()
    small = np.stack(small).reshape(-1, *small[0][0].shape)  # (n * views, 32, 32)

    def words(images: np.ndarray) -> np.ndarray:
        return pack_bits(phash_bits(images)).reshape(-1, len(VIEWS), HASH_WORDS)

    return np.array(digests, dtype=str), words(small), words(np.ascontiguousarray(small[:, :, ::-1]))


def _decoded(paths: list[str]) -> Iterator[tuple[str, np.ndarray | None, str]]:
    """Yield (path, RGB array or None, skip reason) for image files and FER-2013 CSV rows ("file.csv#row")."""
    csv_rows: dict[str, list[int]] = {}
    for p in paths:
        if ".csv#" in p:
            csv_path, row = p.rsplit("#", 1)
            csv_rows.setdefault(csv_path, []).append(int(row))
    texts = {f"{c}#{r}": t for c, rows in csv_rows.items() for r, t in read_csv_pixels(Path(c), rows).items()}
    for p in paths:
        try:
            yield p, (decode_csv_pixels(texts[p]) if p in texts else read_image(p)[0]), ""
        except DecodeError as exc:
            yield p, None, exc.reason


def read_gray(paths: Iterable[str]) -> list[np.ndarray]:
    """Return the grayscale pixels of image files or CSV rows; raise DecodeError naming a bad one."""
    out = []
    for path, image, reason in _decoded([str(p) for p in paths]):
        if image is None:
            raise DecodeError(f"{path}: {reason}")
        out.append(to_gray(image))
    return out


def hash_paths(paths: Iterable[str], cache_dir: Path | None = None, progress: bool = True) -> HashTable:
    """Return the HashTable of image files (or CSV rows), cached on disk by paths, sizes and mtimes."""
    paths = [str(p) for p in paths]
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / "audit" / f"hashes-{_paths_key(paths)}.npz"
        cached = read_cache(cache_file, lambda path: _load(path, len(paths)), "image hashes")
        if cached is not None:
            return cached
    kept: list[str] = []
    skipped: list[tuple[str, str]] = []

    def decoded() -> Iterator[np.ndarray]:
        for path, image, reason in progress_bar(_decoded(paths), total=len(paths), desc="hash images",
                                        disable=not progress):
            if image is None:
                skipped.append((path, reason))
            else:
                kept.append(path)
                yield image

    exact, phash, mirror = hash_images(decoded())  # streams: only the 32x32 hash inputs are kept
    table = HashTable(np.array(kept, dtype=str), exact, phash, mirror, skipped)
    if cache_file is not None:
        _save(cache_file, table)
    return table


def _paths_key(paths: list[str]) -> str:
    """Return a key that changes when a path is added, removed or modified, or the hash changes."""
    h = hashlib.sha1(f"audit-v{HASH_VERSION}".encode())
    for p in paths:
        file = Path(p.rsplit("#", 1)[0] if ".csv#" in p else p)
        try:
            st = file.stat()
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|missing\n".encode())
    return h.hexdigest()[:16]


def _save(path: Path, table: HashTable) -> None:

    with atomic_path(path, what="image hashes") as tmp:
        np.savez(tmp, paths=table.paths, exact=table.exact, phash=table.phash, mirror=table.mirror,
                 skipped=np.array(json.dumps(table.skipped)))


def _load(path: Path, n_paths: int | None = None) -> HashTable:
    """Return a cached HashTable, checking that its arrays agree and (given `n_paths`) cover every path."""
    with np.load(path) as f:
        table = HashTable(f["paths"], f["exact"], f["phash"], f["mirror"],
                          [tuple(s) for s in json.loads(str(f["skipped"]))])
    if not len(table.paths) == len(table.exact) == len(table.phash) == len(table.mirror):
        raise ValueError("its arrays differ in length")
    if table.phash.shape[1:] != (len(VIEWS), HASH_WORDS) or table.mirror.shape != table.phash.shape:
        raise ValueError(f"hashes of shape {table.phash.shape}, expected (n, {len(VIEWS)}, {HASH_WORDS})")
    if n_paths is not None and len(table.paths) + len(table.skipped) != n_paths:
        raise ValueError(f"{len(table.paths)} hashed and {len(table.skipped)} skipped of {n_paths} images")
    return table


def hamming_within(left: np.ndarray, right: np.ndarray, threshold: int,
                   chunk_pairs: int = 4_000_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (i, j, distance) of every pair of packed hashes with Hamming distance <= threshold.

    Compares all len(left) x len(right) pairs with XOR and popcount, a block of left rows at a time:
    the first two words of every pair densely, the rest only for pairs still within the threshold
    (a pair over the threshold on part of its bits is over it on all of them).
    """
    left, right = np.ascontiguousarray(left, np.uint64), np.ascontiguousarray(right, np.uint64)
    if len(left) == 0 or len(right) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    n_dense = min(2, right.shape[1])  # at most 128 bits: the partial distance fits in uint8
    words = [np.ascontiguousarray(right[:, w]) for w in range(n_dense)]
    step = max(1, chunk_pairs // len(right))
    found_i, found_j, found_d = [], [], []
    dist = np.empty((step, len(right)), dtype=np.uint8)
    counts = np.empty((step, len(right)), dtype=np.uint8)
    scratch = np.empty((step, len(right)), dtype=np.uint64)
    for start in range(0, len(left), step):
        block = left[start:start + step]
        d, c, s = dist[:len(block)], counts[:len(block)], scratch[:len(block)]
        for w, column in enumerate(words):
            np.bitwise_xor(block[:, w, None], column[None, :], out=s)
            if w == 0:
                np.bitwise_count(s, out=d)
            else:
                np.bitwise_count(s, out=c)
                d += c
        i, j = np.nonzero(d <= min(threshold, 255))
        full = d[i, j].astype(np.int64)
        if right.shape[1] > n_dense:
            full += np.bitwise_count(block[i, n_dense:] ^ right[j, n_dense:]).sum(axis=1, dtype=np.int64)
        keep = full <= threshold
        found_i.append(i[keep] + start)
        found_j.append(j[keep])
        found_d.append(full[keep])
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d)


def within_either_view(left: np.ndarray, right: np.ndarray, threshold: int) -> pd.DataFrame:
    """Return (left, right, distance) of every pair of (n, views, words) hashes within `threshold` in some view,
    the distance the smallest over the views."""
    found = [pd.DataFrame(dict(zip(("left", "right", "distance"), hamming_within(left[:, v], right[:, v],
                                                                                 threshold))))
             for v in range(len(VIEWS))]
    pairs = pd.concat(found, ignore_index=True)
    return pairs.groupby(["left", "right"], as_index=False, sort=False)["distance"].min()


def find_pairs(left: HashTable, right: HashTable, threshold: int = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """Return every flagged pair (left index, right index, kind, Hamming distance, both paths).

    kind is "exact" (identical grayscale pixels), else "near" (the phash of the image or of it equalized within
    threshold of the other's), else "mirrored" (the same for the flipped left image).
    """
    near = within_either_view(left.phash, right.phash, threshold)
    same = left.exact[near["left"].to_numpy()] == right.exact[near["right"].to_numpy()]
    near["kind"] = np.where(same, "exact", "near")
    # identical pixels always hash alike; this catches them even if a hash ever differed
    exact = pd.merge(pd.DataFrame({"left": np.arange(len(left)), "exact": left.exact}),
                     pd.DataFrame({"right": np.arange(len(right)), "exact": right.exact}), on="exact")
    exact = exact.drop(columns="exact").assign(kind="exact", distance=0)
    mirrored = within_either_view(left.mirror, right.phash, threshold).assign(kind="mirrored")
    pairs = pd.concat([exact, near, mirrored], ignore_index=True)
    pairs["order"] = pairs["kind"].map({k: n for n, k in enumerate(KINDS)})
    pairs = (pairs.sort_values(["left", "right", "order"]).drop_duplicates(["left", "right"])
             .drop(columns="order").reset_index(drop=True))
    pairs["left"] = pairs["left"].astype(np.int64)
    pairs["right"] = pairs["right"].astype(np.int64)
    pairs["distance"] = pairs["distance"].astype(np.int64)
    pairs["left_path"] = left.paths[pairs["left"].to_numpy()] if len(pairs) else []
    pairs["right_path"] = right.paths[pairs["right"].to_numpy()] if len(pairs) else []
    return pairs[PAIR_COLUMNS]


def summarize(pairs: pd.DataFrame, n_left: int, n_right: int) -> dict:
    """Return pair counts by kind and how many images of each side have a copy on the other side."""
    out: dict = {"n_left": int(n_left), "n_right": int(n_right), "pairs": int(len(pairs))}
    for kind in KINDS:
        of_kind = pairs[pairs["kind"] == kind]
        out[f"pairs_{kind}"] = int(len(of_kind))
        out[f"right_with_{kind}"] = int(of_kind["right"].nunique())
    out["left_flagged"] = int(pairs["left"].nunique())
    out["right_flagged"] = int(pairs["right"].nunique())
    out["left_flagged_fraction"] = out["left_flagged"] / n_left if n_left else float("nan")
    out["right_flagged_fraction"] = out["right_flagged"] / n_right if n_right else float("nan")
    return out


def counts_table(summaries: dict[str, dict]) -> pd.DataFrame:
    """Return one row per compared pair of sets: images, flagged pairs by kind, flagged images and fractions."""
    rows = []
    for name, s in summaries.items():
        rows.append({"comparison": name, "left images": s["n_left"], "right images": s["n_right"],
                     **{f"{k} pairs": s[f"pairs_{k}"] for k in KINDS},
                     "left images flagged": s["left_flagged"], "right images flagged": s["right_flagged"],
                     "left fraction": s["left_flagged_fraction"], "right fraction": s["right_flagged_fraction"]})
    return pd.DataFrame(rows).set_index("comparison")


@dataclass
class LeakageAudit:
    """The audit of one internal and one external set: hashed images, flagged pairs and their counts."""

    threshold: int
    train: pd.DataFrame  # the internal manifest rows on each side of the split
    val: pd.DataFrame
    external: pd.DataFrame
    pairs: dict[str, pd.DataFrame]  # "train_vs_validation", "internal_vs_external"
    summaries: dict[str, dict]
    skipped: list[tuple[str, str]]  # files listed in the manifests that could not be hashed
    timings: dict[str, float]

    def external_overlap(self, paths: pd.Series) -> np.ndarray:
        """Return a bool mask over external image paths: True where the internal set holds a copy."""
        return pd.Series(paths).isin(set(self.pairs["internal_vs_external"]["right_path"])).to_numpy()

    def counts(self) -> pd.DataFrame:
        """Return the counts table of both comparisons."""
        return counts_table(self.summaries)

    def to_dict(self) -> dict:
        """Return the threshold, counts, timings, skipped files and every flagged pair as plain data."""
        return {"threshold": self.threshold, "hash": HASH_DESCRIPTION, "summaries": self.summaries,
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped], "timings_s": self.timings,
                "pairs": {name: frame.drop(columns=["left", "right"]).to_dict(orient="records")
                          for name, frame in self.pairs.items()}}


HASH_DESCRIPTION = (f"grayscale; exact: digest of pixels and size; near: phash {HASH_BITS} bits of the "
                    f"histogram-equalized image (imagehash.phash hash_size={HASH_SIZE}, "
                    f"highfreq_factor={HIGHFREQ_FACTOR}); "
                    "mirrored: phash of the left-right flipped image")


def audit_manifests(internal: pd.DataFrame, external: pd.DataFrame, cache_dir: Path | None,
                    threshold: int = DEFAULT_THRESHOLD, seed: int = 42, val_fraction: float = 0.2,
                    progress: bool = True) -> LeakageAudit:
    """Return the audit of an internal manifest (split as runs split it) against an external manifest."""
    import time

    train, val = split_train_val(internal, val_fraction=val_fraction, seed=seed)
    external = usable(external)
    start = time.perf_counter()
    internal_hashes = hash_paths(usable(internal)["path"], cache_dir, progress)
    external_hashes = hash_paths(external["path"], cache_dir, progress)
    hashed_s = time.perf_counter() - start
    skipped = internal_hashes.skipped + external_hashes.skipped
    bad = {p for p, _ in skipped}
    train, val = (f[~f["path"].isin(bad)].reset_index(drop=True) for f in (train, val))
    external = external[~external["path"].isin(bad)].reset_index(drop=True)
    internal_all = internal_hashes.select(pd.concat([train["path"], val["path"]]))
    external_all = external_hashes.select(external["path"])
    start = time.perf_counter()
    pairs = {"train_vs_validation": find_pairs(internal_all.take(np.arange(len(train))),
                                               internal_all.take(np.arange(len(train), len(internal_all))),
                                               threshold),
             "internal_vs_external": find_pairs(internal_all, external_all, threshold)}
    compared_s = time.perf_counter() - start
    summaries = {"train_vs_validation": summarize(pairs["train_vs_validation"], len(train), len(val)),
                 "internal_vs_external": summarize(pairs["internal_vs_external"], len(internal_all),
                                                   len(external_all))}
    return LeakageAudit(threshold, train, val, external, pairs, summaries, skipped,
                        {"hashing_s": round(hashed_s, 2), "comparing_s": round(compared_s, 2)})


def audit_folders(internal_dir: Path, external_dir: Path, cache_dir: Path, threshold: int = DEFAULT_THRESHOLD,
                  seed: int = 42, val_fraction: float = 0.2, progress: bool = True) -> tuple[LeakageAudit, dict]:
    """Return the audit of two data folders (any supported layout) and its JSON-ready result."""
    sources = {"internal": detect_source(internal_dir, "internal"), "external": detect_source(external_dir, "external")}
    manifests = {role: build_manifest(source, cache_dir, progress) for role, source in sources.items()}
    result = audit_manifests(manifests["internal"], manifests["external"], cache_dir, threshold, seed,
                             val_fraction, progress)
    data = {role: {"source": sources[role].describe(),
                   "not_used": skip_summary(manifests[role]).to_dict(orient="records")} for role in sources}
    return result, result.to_dict() | {"data": data, "seed": seed, "val_fraction": val_fraction}


def report_text(result: dict, max_pairs: int = 10) -> str:
    """Return a plain-text report of an audit result: data, skipped files, counts and the closest pairs."""
    lines = []
    for info in result.get("data", {}).values():
        lines.append(info["source"])
        lines += [f"  not used: {row['files']} file(s): {row['status']}: {row['reason']}" for row in info["not_used"]]
    lines += [f"  could not hash: {row['path']}: {row['reason']}" for row in result["skipped"]]
    lines.append(f"\nthreshold: {result['threshold']} of {HASH_BITS} bits")
    for name, s in result["summaries"].items():
        lines.append(f"\n{name.replace('_', ' ')}: {s['n_left']:,} x {s['n_right']:,} images, "
                     f"{s['pairs']} flagged pairs "
                     f"(exact {s['pairs_exact']}, near {s['pairs_near']}, mirrored {s['pairs_mirrored']}); "
                     f"{s['right_flagged']} of the {s['n_right']:,} right-hand images "
                     f"({s['right_flagged_fraction']:.1%}) "
                     f"have a copy on the left")
        for pair in sorted(result["pairs"][name], key=lambda p: p["distance"])[:max_pairs]:
            lines.append(f"  {pair['kind']:8s} {pair['distance']:3d}  {pair['left_path']}  {pair['right_path']}")
    return "\n".join(lines)
