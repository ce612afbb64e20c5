"""Measured quality of the leakage audit: planted copies, recall, false positives, threshold and speed.

    .venv/bin/python tools/audit_benchmark.py --data FER2013_DIR [--other-copy FER2013_OTHER_COPY_DIR]

The threshold is chosen on copies of FER-2013 *training* images; recall and false positives are then
measured on copies of FER-2013 *test* images planted beside the training set, so the numbers reported
are not the ones the threshold was tuned on. Given another copy of the test split with other pixels (such as
FER-2013's original and its histogram-equalized public copy), its real pairs join the calibration (one half,
drawn by the seed) and the recall is reported on the other half.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ferlib.audit import hashes, leakage  # noqa: E402
from ferlib.config import PROJECT_ROOT  # noqa: E402
from ferlib.data.manifest import build_manifest, usable  # noqa: E402
from ferlib.data.preprocess import equalize_grey  # noqa: E402
from ferlib.data.sources import detect_source  # noqa: E402
from ferlib.data.synthetic import generate_faces  # noqa: E402
from ferlib.runtime.files import write_json, write_text  # noqa: E402
from ferlib.runtime.paths import default_cache_dir  # noqa: E402

RECALL_GOAL = 0.99
FALSE_POSITIVE_GOAL = 0.001  # false flags per planted copy compared (share of copies wrongly flagged)
CALIBRATION_RECALL = 0.995  # every transformation of the calibration copies must reach this


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert(img.mode)


def _tint(img: Image.Image) -> Image.Image:
    """Return an RGB copy with a warm colour cast (as a colourised or re-saved RGB copy would have)."""
    a = np.asarray(img.convert("L"), dtype=np.float64)
    return Image.fromarray(np.clip(np.stack([a * 1.05, a, a * 0.9], axis=-1) + 0.5, 0, 255).astype(np.uint8))


def _resize(size: int) -> Callable[[Image.Image], Image.Image]:
    return lambda img: img.resize((size, size), Image.Resampling.BICUBIC)


def _enhance(kind: type, factor: float) -> Callable[[Image.Image], Image.Image]:
    return lambda img: kind(img).enhance(factor)


def _equalized(img: Image.Image) -> Image.Image:
    """Return the histogram-equalized copy (as FER-2013's public equalized copy was made)."""
    return Image.fromarray(equalize_grey(np.asarray(img.convert("L"))))


def _gamma(gamma: float) -> Callable[[Image.Image], Image.Image]:
    lut = [int(round(255 * (v / 255) ** gamma)) for v in range(256)]
    return lambda img: img.point(lut * len(img.getbands()))


# What the audit must survive: each alone (global intensity changes and equalization among them), realistic
# combinations, and one stress combination.
TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "resize 96": _resize(96),
    "resize 350": _resize(350),
    "JPEG q50": lambda img: _jpeg(img, 50),
    "JPEG q75": lambda img: _jpeg(img, 75),
    "RGB, tinted": _tint,
    "brightness +15%": _enhance(ImageEnhance.Brightness, 1.15),
    "brightness -15%": _enhance(ImageEnhance.Brightness, 0.85),
    "contrast +15%": _enhance(ImageEnhance.Contrast, 1.15),
    "contrast -15%": _enhance(ImageEnhance.Contrast, 0.85),
    "contrast -40%": _enhance(ImageEnhance.Contrast, 0.6),
    "gamma 0.6": _gamma(0.6),
    "gamma 1.6": _gamma(1.6),
    "histogram-equalized": _equalized,
    "histogram-equalized + JPEG q75": lambda img: _jpeg(_equalized(img), 75),
    "resize 96 + JPEG q75": lambda img: _jpeg(_resize(96)(img), 75),
    "resize 96 + brightness +15% + contrast +15% + JPEG q50": lambda img: _jpeg(
        ImageEnhance.Contrast(ImageEnhance.Brightness(_resize(96)(img)).enhance(1.15)).enhance(1.15), 50),
    "mirror": ImageOps.mirror,
    "mirror + resize 96 + JPEG q75": lambda img: _jpeg(_resize(96)(ImageOps.mirror(img)), 75),
}
MIRROR_TRANSFORMS = frozenset(name for name in TRANSFORMS if name.startswith("mirror"))


def apply_transform(gray: np.ndarray, name: str) -> np.ndarray:
    """Return a transformed copy of a uint8 grayscale image as a uint8 array (grayscale or RGB)."""
    return np.asarray(TRANSFORMS[name](Image.fromarray(gray, mode="L")), dtype=np.uint8)


def copy_distances(originals: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Return, per transformation, the Hamming distance of each transformed copy to its original
    (to the original's mirrored hash for mirroring transformations): the smaller over the hashed views."""
    _, phash, mirror = hashes.hash_images(originals)
    out = {}
    for name in TRANSFORMS:
        _, copies, _ = hashes.hash_images(apply_transform(g, name) for g in originals)
        reference = mirror if name in MIRROR_TRANSFORMS else phash
        out[name] = np.bitwise_count(copies ^ reference).sum(axis=2).min(axis=1).astype(np.int64)
    return out


def choose_threshold(distances: dict[str, np.ndarray], recall: float = CALIBRATION_RECALL, step: int = 4) -> int:
    """Return the smallest multiple of `step` at which every transformation's copies reach `recall`."""
    needed = max(float(np.quantile(d, recall, method="higher")) for d in distances.values())
    return int(np.ceil(needed / step) * step) if needed > 0 else step


def planted_benchmark(query_images: list[np.ndarray], query_rows: np.ndarray, queries: hashes.HashTable,
                      threshold: int) -> dict:
    """Return recall per transformation and false positives of copies of query images planted in the
    internal set: every copy is compared with every query image; a flag on another image than the
    copy's source is false unless the audit of the queries against themselves pairs the two."""
    names = list(TRANSFORMS)
    sources = np.repeat(query_rows, len(names))
    kinds = np.tile(names, len(query_rows))
    _, phash, mirror = hashes.hash_images(apply_transform(query_images[r], t) for r, t in zip(sources, kinds))
    names_planted = np.array([f"planted-{i}" for i in range(len(sources))])  # their paths and digests
    planted = hashes.HashTable(names_planted, names_planted, phash, mirror)
    start = time.perf_counter()
    pairs = leakage.find_pairs(planted, queries, threshold)
    compare_s = time.perf_counter() - start
    among = leakage.find_pairs(queries, queries, threshold)  # the queries audited against themselves
    among = among[among["left"] != among["right"]]
    known = set(zip(among["left"], among["right"])) | set(zip(among["right"], among["left"]))
    hit = pairs["right"].to_numpy() == sources[pairs["left"].to_numpy()]
    explained = np.array([(sources[i], j) in known for i, j in zip(pairs["left"], pairs["right"])], dtype=bool)
    false = pairs[~hit & ~explained]
    found = pairs[hit]
    rows = []
    for name in names:
        copies = np.flatnonzero(kinds == name)
        of_name = found[found["left"].isin(copies)]
        expected = {"mirrored"} if name in MIRROR_TRANSFORMS else {"near", "exact"}
        rows.append({"transformation": name, "copies": len(copies), "found": len(of_name),
                     "recall": len(of_name) / len(copies), "right kind": float(of_name["kind"].isin(expected).mean())
                     if len(of_name) else float("nan"),
                     "median distance": float(of_name["distance"].median()) if len(of_name) else float("nan"),
                     "max distance": int(of_name["distance"].max()) if len(of_name) else -1})
    n_copies, n_queries = len(sources), len(queries)
    comparisons = n_copies * n_queries - n_copies
    return {
        "threshold": threshold, "copies": n_copies, "query_images": int(len(query_rows)), "compared_with": n_queries,
        "per_transformation": rows, "recall": float(hit.sum() / n_copies),
        "min_recall": min(r["recall"] for r in rows),
        "true_positives": int(hit.sum()), "false_positives": int(len(false)),
        "explained_by_duplicates_among_queries": int(explained[~hit].sum()),
        "precision": float(hit.sum() / (hit.sum() + len(false))) if hit.sum() + len(false) else float("nan"),
        "false_positive_rate_per_comparison": len(false) / comparisons,
        "copies_with_a_false_flag": float(false["left"].nunique() / n_copies),
        "comparisons": int(comparisons), "comparison_s": round(compare_s, 2),
    }


def synthetic_false_positives(n: int, threshold: int, seed: int = 5) -> dict:
    """Return flagged pairs among n distinct generated faces (every flag is false): a low-texture worst case."""
    faces, _ = generate_faces(n, seed=seed)
    digests, phash, mirror = hashes.hash_images(faces)
    table = hashes.HashTable(np.arange(n).astype(str), digests, phash, mirror)
    pairs = leakage.find_pairs(table, table, threshold)
    pairs = pairs[pairs["left"] < pairs["right"]]  # each unordered pair once, self-pairs out
    comparisons = n * (n - 1) // 2
    return {"faces": n, "comparisons": comparisons, "flagged_pairs": int(len(pairs)),
            "by_kind": pairs["kind"].value_counts().to_dict(),
            "false_positive_rate_per_comparison": len(pairs) / comparisons,
            "faces_with_a_false_flag": float(len(set(pairs["left"]) | set(pairs["right"])) / n)}


def comparison_time(n_left: int = 59_000, n_right: int = 7_000, threshold: int = leakage.DEFAULT_THRESHOLD,
                    seed: int = 0) -> dict:
    """Return the wall time of a full find_pairs (exact, near, mirrored) on generated hashes."""
    rng = np.random.default_rng(seed)

    def table(n: int, tag: str) -> hashes.HashTable:
        words = rng.integers(0, np.iinfo(np.uint64).max, (2, n, len(hashes.VIEWS), hashes.HASH_WORDS),
                             dtype=np.uint64, endpoint=True)
        names = np.array([f"{tag}{i}" for i in range(n)])
        return hashes.HashTable(names, names, words[0], words[1])

    left, right = table(n_left, "l"), table(n_right, "r")
    start = time.perf_counter()
    leakage.find_pairs(left, right, threshold)
    return {"left": n_left, "right": n_right, "seconds": round(time.perf_counter() - start, 2)}


def fer_as_is(train: pd.DataFrame, test: pd.DataFrame, train_hashes: hashes.HashTable,
              test_hashes: hashes.HashTable, threshold: int) -> dict:
    """Return the counts of FER-2013 train-vs-test pairs as the data stands."""
    start = time.perf_counter()
    pairs = leakage.find_pairs(train_hashes, test_hashes, threshold)
    seconds = time.perf_counter() - start
    labels = dict(zip(train["path"], train["label"])) | dict(zip(test["path"], test["label"]))
    summary = leakage.summarize(pairs, len(train_hashes), len(test_hashes))
    bands = (pairs.loc[pairs["kind"] != "exact", "distance"] // 8 * 8).astype(int).value_counts().sort_index()
    summary |= {"comparison_s": round(seconds, 2),
                "pairs_with_different_labels": int((pairs["left_path"].map(labels)
                                                    != pairs["right_path"].map(labels)).sum()),
                "distance_bands_near_and_mirrored": {f"{lo}-{lo + 7}": int(n) for lo, n in bands.items()}}
    return summary


def other_copy_distances(test: pd.DataFrame, test_root: Path, other_root: Path, cache_dir: Path,
                         progress: bool = True) -> np.ndarray:
    """Return the distance between each test image and the file of the same name under `other_root` (-1 where
    the other copy lacks it): the smaller over the hashed views, as the audit compares them."""
    mine = list(test["path"])
    theirs = [str(other_root / Path(p).relative_to(test_root)) for p in mine]
    present = np.array([Path(p).is_file() for p in theirs])
    if not present.any():
        raise FileNotFoundError(f"{other_root} holds none of the test images of {test_root} by name")
    left = hashes.hash_paths([p for p, ok in zip(mine, present) if ok], cache_dir, progress)
    right = hashes.hash_paths([p for p, ok in zip(theirs, present) if ok], cache_dir, progress)
    if left.skipped or right.skipped:
        raise ValueError(f"{len(left.skipped) + len(right.skipped)} images of the two copies could not be hashed")
    out = np.full(len(mine), -1, dtype=np.int64)
    out[present] = np.bitwise_count(left.phash ^ right.phash).sum(axis=2).min(axis=1)
    return out


def run_benchmark(fer_root: Path, cache_dir: Path, n_calibration: int = 1000, n_planted: int = 500,
                  seed: int = 0, progress: bool = True, other_copy: Path | None = None) -> dict:
    """Return the whole benchmark on a FER-2013 folder (train and test splits); with
    `other_copy` (a FER-2013 folder whose test split holds the same files with other pixels) its real pairs too."""
    source = detect_source(fer_root, "external")
    train = usable(build_manifest(detect_source(fer_root, "internal"), cache_dir, progress))
    test = usable(build_manifest(source, cache_dir, progress))
    rng = np.random.default_rng(seed)

    calibration_rows = np.sort(rng.choice(len(train), size=min(n_calibration, len(train)), replace=False))
    distances = copy_distances(hashes.read_gray(list(train["path"].iloc[calibration_rows])))
    real = None
    if other_copy is not None:
        pairs_d = other_copy_distances(test, source.class_dir, detect_source(other_copy, "external").class_dir,
                                       cache_dir, progress)
        halves = np.array_split(rng.permutation(np.flatnonzero(pairs_d >= 0)), 2)
        distances["another copy of the test split (real pairs)"] = pairs_d[halves[0]]
        real = {"root": str(other_copy), "pairs": int((pairs_d >= 0).sum()), "calibration_pairs": len(halves[0]),
                "reported_pairs": len(halves[1]), "reported": pairs_d[halves[1]]}
    threshold = choose_threshold(distances)
    calibration = {name: {"median": float(np.median(d)), "p99": float(np.quantile(d, 0.99)),
                          "p99.9": float(np.quantile(d, 0.999)), "max": int(d.max())}
                   for name, d in distances.items()}

    sample = list(train["path"].iloc[:2000])
    start = time.perf_counter()
    hashes.hash_paths(sample, cache_dir=None, progress=False)
    images_per_s = len(sample) / (time.perf_counter() - start)

    train_hashes = hashes.hash_paths(train["path"], cache_dir, progress)
    test_hashes = hashes.hash_paths(test["path"], cache_dir, progress)
    as_is = fer_as_is(train, test, train_hashes, test_hashes, threshold)

    rows = np.sort(rng.choice(len(test_hashes), size=min(n_planted, len(test_hashes)), replace=False))
    images = dict(zip(rows, hashes.read_gray(list(test_hashes.paths[rows]))))
    planted = planted_benchmark(images, rows, test_hashes, threshold)
    return {
        "what": "leakage audit: threshold chosen on planted copies of FER-2013 train images, recall and false "
                "positives measured on planted copies of FER-2013 test images",
        "hash": leakage.HASH_DESCRIPTION, "threshold": threshold, "default_threshold": leakage.DEFAULT_THRESHOLD,
        "threshold_rule": f"smallest multiple of 4 bits at which every transformation of {len(calibration_rows)} "
                          f"calibration copies (FER-2013 train) reaches {CALIBRATION_RECALL:.1%} recall",
        "calibration": calibration, "planted": planted,
        "goals": {"recall": RECALL_GOAL, "false_positive_share_of_copies": FALSE_POSITIVE_GOAL,
                  "met": bool(planted["min_recall"] >= RECALL_GOAL
                              and planted["copies_with_a_false_flag"] <= FALSE_POSITIVE_GOAL)},
        "synthetic_negatives": synthetic_false_positives(3000, threshold),
        "hashing_images_per_s": round(images_per_s, 1),
        "timing_59000x7000": comparison_time(threshold=threshold, seed=seed),
        "fer2013_train_vs_test": as_is,
        "other_copy": None if real is None else {
            **{k: v for k, v in real.items() if k != "reported"},
            "recall_on_reported_pairs": float((real["reported"] <= threshold).mean()),
            "recall_at": {t: float((real["reported"] <= t).mean()) for t in range(24, 65, 4)}},
        "data": {"root": str(fer_root), "train_images": len(train), "test_images": len(test)},
    }


def _markdown_table(frame: pd.DataFrame, floatfmt: str) -> str:
    """Return a DataFrame as a Markdown table (index first), floats formatted with floatfmt."""
    def cell(value) -> str:
        return format(value, floatfmt) if isinstance(value, float) else str(value)

    head = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([str(i)] + [cell(v) for v in row]) + " |"
              for i, row in zip(frame.index, frame.astype(object).to_numpy())]
    return "\n".join(lines)


def to_markdown(result: dict) -> str:
    """Return the benchmark as a short Markdown report with the per-transformation table."""
    p, fer, syn = result["planted"], result["fer2013_train_vs_test"], result["synthetic_negatives"]
    table = pd.DataFrame(p["per_transformation"]).set_index("transformation")
    calibration = pd.DataFrame(result["calibration"]).T
    other, other_lines = result.get("other_copy"), []
    if other:
        at = ", ".join(f"{t} bits {r:.2%}" for t, r in other["recall_at"].items())
        other_lines = ["## Another copy of the test split with other pixels (real pairs)", "",
                       f"{other['pairs']:,} test images are in both copies ({other['root']}); "
                       f"{other['calibration_pairs']:,} pairs joined the calibration, and of the other "
                       f"{other['reported_pairs']:,} the audit finds **{other['recall_on_reported_pairs']:.2%}** at "
                       f"{result['threshold']} bits (at {at}).", ""]
    lines = [
        "# Leakage audit benchmark", "",
        f"Hash: {result['hash']}.", "",
        f"Threshold: **{result['threshold']} of {hashes.HASH_BITS} bits** ({result['threshold_rule']}); "
        f"the audit's default is {result['default_threshold']}.", "",
        f"## Planted copies of FER-2013 test images ({p['query_images']} images x {len(table)} transformations = "
        f"{p['copies']:,} copies, each compared with all {p['compared_with']:,} test images)", "",
        _markdown_table(table, ".3f"), "",
        f"- recall {p['recall']:.4f} overall, lowest per transformation {p['min_recall']:.4f} (goal {RECALL_GOAL})",
        f"- false positives: {p['false_positives']} pairs of {p['comparisons']:,} comparisons "
        f"(rate {p['false_positive_rate_per_comparison']:.2e}); copies with a false flag: "
        f"{p['copies_with_a_false_flag']:.4%} (goal at most {FALSE_POSITIVE_GOAL:.1%}); "
        f"precision {p['precision']:.4f}; "
        f"{p['explained_by_duplicates_among_queries']} other flags point at duplicates within the test set",
        f"- goals met: {result['goals']['met']}", "",
        "## FER-2013 train against test, as they are", "",
        f"{fer['pairs']} flagged pairs: {fer['pairs_exact']} exact, {fer['pairs_near']} near, "
        f"{fer['pairs_mirrored']} mirrored; {fer['right_flagged']} of {fer['n_right']:,} test images "
        f"({fer['right_flagged_fraction']:.1%}) have a copy among {fer['n_left']:,} training images "
        f"({fer['right_with_exact']} exact); {fer['pairs_with_different_labels']} pairs carry different labels.", "",
        f"Near and mirrored pairs by Hamming distance: {fer['distance_bands_near_and_mirrored']}", "",
        *other_lines,
        "## Speed", "",
        f"- hashing: {result['hashing_images_per_s']:.0f} images/s (decode, grayscale, both hashes)",
        f"- comparing {result['timing_59000x7000']['left']:,} x {result['timing_59000x7000']['right']:,} images "
        f"(exact, near and mirrored, generated hashes): {result['timing_59000x7000']['seconds']} s",
        f"- FER-2013 train x test ({fer['n_left']:,} x {fer['n_right']:,}): {fer['comparison_s']} s", "",
        "## Distinct synthetic faces (every flag is false: a low-texture worst case)", "",
        f"{syn['flagged_pairs']} of {syn['comparisons']:,} pairs flagged "
        f"(rate {syn['false_positive_rate_per_comparison']:.1e}, "
        f"by kind {syn['by_kind']}); faces with a false flag: {syn['faces_with_a_false_flag']:.2%}", "",
        "## Calibration copies (FER-2013 train): Hamming distance to the original", "",
        _markdown_table(calibration, ".1f"), "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a FER-2013 folder with train/ and test/")
    parser.add_argument("--other-copy", type=Path, default=None,
                        help="another copy of the same FER-2013 test files with other pixels (e.g. the original beside "
                             "the equalized copy): half its real pairs calibrate, half are reported")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=PROJECT_ROOT / "outputs" / "bench" / "audit.json")
    args = parser.parse_args(argv)
    result = run_benchmark(args.data, args.cache or default_cache_dir(), seed=0, other_copy=args.other_copy)
    write_json(args.json, result)
    write_text(args.json.with_suffix(".md"), to_markdown(result))
    print(to_markdown(result))
    print(f"wrote {args.json} and {args.json.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
