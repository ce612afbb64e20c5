"""Leakage audit: exact, near and mirrored duplicates between two sets of images, from their hashes
(`ferlib.audit.hashes` says what each kind compares).

A near pair's distance is the smaller over the two hashed views: the plain hash keeps copies that were resized,
re-compressed, tinted or made brighter within a few dozen bits, the equalized one copies of other contrast (gamma,
strong contrast changes, and equalization itself: FER-2013's equalized public copy hashes like the original),
while different faces lie about 128 bits apart in both.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ferlib.audit.hashes import HASH_BITS, HASH_SIZE, HIGHFREQ_FACTOR, VIEWS, HashTable, hash_paths
from ferlib.data.manifest import build_manifest, skip_summary, split_train_val, usable
from ferlib.data.sources import detect_source

# Chosen by `tools/audit_benchmark.py --other-copy` (the smallest multiple of 4 bits at which every
# transformation of copies of 1,000 FER-2013 *training* images, and half the real pairs of FER-2013's test split
# and its equalized copy, reach 99.5% recall); it reports recall and false flags on planted copies of FER-2013
# *test* images and on the other half of the real pairs.
DEFAULT_THRESHOLD = 44
KINDS = ("exact", "near", "mirrored")
PAIR_COLUMNS = ["left", "right", "kind", "distance", "left_path", "right_path"]


def hamming_within(left: np.ndarray, right: np.ndarray, threshold: int,
                   chunk_pairs: int = 4_000_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (i, j, distance) of every pair of packed hashes with Hamming distance <= threshold, by XOR and popcount
    a block of left rows at a time: the first two words of every pair densely, the rest only for pairs still within
    the threshold (a pair over the threshold on part of its bits is over it on all of them)."""
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
        d.fill(0)
        for w, column in enumerate(words):
            np.bitwise_xor(block[:, w, None], column[None, :], out=s)
            d += np.bitwise_count(s, out=c)
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
    """Return every flagged pair (left index, right index, kind, Hamming distance, both paths), once, as the first
    kind that applies: "exact" (identical grayscale pixels), "near" (the phash of the image or of it equalized within
    threshold of the other's), "mirrored" (the same for the flipped left image)."""
    near = within_either_view(left.phash, right.phash, threshold)  # identical pixels hash alike: distance 0
    same = left.exact[near["left"].to_numpy()] == right.exact[near["right"].to_numpy()]
    near["kind"] = np.where(same, "exact", "near")
    mirrored = within_either_view(left.mirror, right.phash, threshold).assign(kind="mirrored")
    pairs = pd.concat([near, mirrored], ignore_index=True)
    pairs["order"] = pairs["kind"].map({k: n for n, k in enumerate(KINDS)})
    pairs = (pairs.sort_values(["left", "right", "order"]).drop_duplicates(["left", "right"])
             .drop(columns="order").reset_index(drop=True))
    pairs = pairs.astype({"left": np.int64, "right": np.int64, "distance": np.int64})
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
    return pd.DataFrame([{"comparison": name, "left images": s["n_left"], "right images": s["n_right"],
                          **{f"{k} pairs": s[f"pairs_{k}"] for k in KINDS},
                          "left images flagged": s["left_flagged"], "right images flagged": s["right_flagged"],
                          "left fraction": s["left_flagged_fraction"], "right fraction": s["right_flagged_fraction"]}
                         for name, s in summaries.items()]).set_index("comparison")


@dataclass
class LeakageAudit:
    """The audit of one internal and one external set: hashed images, flagged pairs and their counts."""

    threshold: int
    external: pd.DataFrame  # the external manifest rows audited
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
    train, val = split_train_val(internal, val_fraction=val_fraction, seed=seed)
    external = usable(external)
    start = time.perf_counter()
    internal_hashes = hash_paths(usable(internal)["path"], cache_dir, progress)
    external_hashes = hash_paths(external["path"], cache_dir, progress)
    hashed_s = time.perf_counter() - start
    skipped = internal_hashes.skipped + external_hashes.skipped
    bad = {p for p, _ in skipped}
    train, val, external = (f[~f["path"].isin(bad)].reset_index(drop=True) for f in (train, val, external))
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
    return LeakageAudit(threshold, external, pairs, summaries, skipped,
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
