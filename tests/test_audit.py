"""The leakage audit: every transformation it must survive, faces it must not flag, the CLI, bad files."""
from __future__ import annotations

import json
from pathlib import Path

import imagehash
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ferlib import cli
from ferlib.audit import hashes, leakage
from ferlib.data import embedded
from ferlib.data.sources import DataSource, detect_source
from ferlib.data.synthetic import generate_faces
from ferlib.reports.banner import examples_allowed
from tests.conftest import FER2013, load_tool

quality = load_tool("audit_benchmark")  # the audit's measured quality: a maintainers' tool

THRESHOLD = leakage.DEFAULT_THRESHOLD


def _table(images, tag: str) -> hashes.HashTable:
    digests, phash, mirror = hashes.hash_images(images)
    names = np.array([f"{tag}{i}" for i in range(len(digests))])
    return hashes.HashTable(names, digests, phash, mirror)


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    """Synthetic faces, plus real FER-2013 test faces when the shared copy is present."""
    images = list(generate_faces(10, seed=21)[0])
    if FER2013.is_dir():
        paths = [sorted((FER2013 / "test" / c).glob("*.jpg"))[3] for c in ("angry", "fear", "happy", "sad", "surprise")]
        images += hashes.read_gray(paths)
    return images


def test_phash_is_imagehash_phash_of_the_image_and_of_it_equalized(faces):
    import cv2

    _, words, mirror = hashes.hash_images(faces[:4])
    assert words.shape == (4, len(hashes.VIEWS), hashes.HASH_WORDS)
    for face, w, m in zip(faces, words, mirror):
        for view, image in zip(w, (face, cv2.equalizeHist(face))):
            reference = imagehash.phash(Image.fromarray(image), hash_size=16, highfreq_factor=2).hash.reshape(1, -1)
            assert (hashes.pack_bits(reference)[0] == view).all()
        flipped = imagehash.phash(Image.fromarray(face[:, ::-1].copy()), hash_size=16, highfreq_factor=2)
        assert (hashes.pack_bits(flipped.hash.reshape(1, -1))[0] == m[0]).all()


def test_a_copy_with_other_contrast_is_near_in_the_equalized_view_only(faces):
    import cv2

    darker = [np.clip(40 + 0.35 * f.astype(float), 0, 255).astype(np.uint8) for f in faces]  # low contrast
    equalized = [cv2.equalizeHist(f) for f in faces]
    for copies in (darker, equalized):
        a, b = _table(faces, "o"), _table(copies, "c")
        plain, equal = (np.bitwise_count(a.phash[:, v] ^ b.phash[:, v]).sum(axis=1) for v in range(2))
        pairs = leakage.find_pairs(b, a, THRESHOLD)
        own = pairs[pairs["left"] == pairs["right"]]
        assert len(own) == len(faces) and (own["distance"].to_numpy() == np.minimum(plain, equal)).all()
    assert (plain > equal).mean() > 0.5  # the equalized view is what brings the copies together


@pytest.mark.parametrize("name", list(quality.TRANSFORMS))
def test_each_transformation_is_flagged_with_its_source(faces, name):
    originals = _table(faces, "o")
    if name in quality.MIRROR_TRANSFORMS:  # only faces whose mirror image is not already a near copy
        asymmetric = np.bitwise_count(originals.phash ^ originals.mirror).sum(axis=2).min(axis=1) > THRESHOLD
        assert asymmetric.sum() >= 5
        faces = [f for f, keep in zip(faces, asymmetric) if keep]
        originals = _table(faces, "o")
    copies = _table([quality.apply_transform(f, name) for f in faces], "c")
    pairs = leakage.find_pairs(copies, originals, THRESHOLD)
    own = pairs[pairs["left"] == pairs["right"]]
    assert sorted(own["left"]) == list(range(len(faces))), pairs
    expected = {"mirrored"} if name in quality.MIRROR_TRANSFORMS else {"near", "exact"}
    assert set(own["kind"]) <= expected
    assert len(pairs) == len(own)  # and nothing else


def test_rgb_copy_of_a_grayscale_image_is_exact(faces):
    rgb = [np.repeat(f[:, :, None], 3, axis=2) for f in faces]
    pairs = leakage.find_pairs(_table(rgb, "rgb"), _table(faces, "gray"), THRESHOLD)
    assert set(pairs["kind"]) == {"exact"} and (pairs["left"] == pairs["right"]).all() and len(pairs) == len(faces)


def test_upscaled_copy_is_near_not_exact(faces):
    big = [np.asarray(Image.fromarray(f).resize((96, 96), Image.Resampling.NEAREST)) for f in faces]
    pairs = leakage.find_pairs(_table(big, "big"), _table(faces, "small"), THRESHOLD)
    assert set(pairs["kind"]) == {"near"} and len(pairs) == len(faces)


def test_different_synthetic_faces_are_not_flagged():
    table = _table(generate_faces(40, seed=8)[0], "f")
    pairs = leakage.find_pairs(table, table, THRESHOLD)
    assert (pairs["left"] == pairs["right"]).all() and len(pairs) == 40  # each face only with itself


@pytest.mark.realdata
def test_different_real_faces_are_not_flagged():
    if not FER2013.is_dir():
        pytest.skip(f"FER-2013 copy not found at {FER2013}")
    happy = sorted((FER2013 / "test" / "happy").glob("*.jpg"))[:80]
    angry = sorted((FER2013 / "test" / "angry").glob("*.jpg"))[:80]
    pairs = leakage.find_pairs(hashes.hash_paths(happy, progress=False), hashes.hash_paths(angry, progress=False))
    assert pairs.empty


def test_hamming_within_matches_brute_force():
    rng = np.random.default_rng(0)
    left = rng.integers(0, np.iinfo(np.uint64).max, (70, 4), dtype=np.uint64, endpoint=True)
    right = left[rng.integers(0, 70, 50)].copy()
    right[:, 3] ^= np.uint64(0xFF)  # 8 bits off in the sparse words
    right[:20, 0] ^= np.uint64(0xFFFF)  # 16 more bits in a dense word
    brute = np.bitwise_count(left[:, None, :] ^ right[None]).sum(axis=-1)
    for threshold in (0, 8, 24, 130, 256):
        i, j, d = leakage.hamming_within(left, right, threshold, chunk_pairs=500)
        bi, bj = np.nonzero(brute <= threshold)
        assert sorted(zip(i, j, d)) == sorted(zip(bi, bj, brute[bi, bj])), threshold


def test_choose_threshold_covers_every_transformation():
    distances = {"a": np.array([0, 2, 4, 6]), "b": np.array([10, 12, 13, 14])}
    assert quality.choose_threshold(distances, recall=1.0) == 16
    assert quality.choose_threshold({"a": np.zeros(5)}, recall=1.0) == 4


def test_hashes_are_cached_and_bad_files_skipped(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    paths = []
    for i, face in enumerate(generate_faces(3, seed=2)[0]):
        Image.fromarray(face).save(folder / f"{i}.png")
        paths.append(folder / f"{i}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    paths.append(folder / "broken.jpg")
    first = hashes.hash_paths(paths, tmp_path / "cache", progress=False)
    assert len(first) == 3 and first.skipped == [(str(folder / "broken.jpg"), first.skipped[0][1])]
    assert "corrupt" in first.skipped[0][1] or "not an image" in first.skipped[0][1]
    assert len(list((tmp_path / "cache" / "audit").glob("*.npz"))) == 1
    again = hashes.hash_paths(paths, tmp_path / "cache", progress=False)
    assert ((again.phash == first.phash).all() and list(again.paths) == list(first.paths)
            and again.skipped == first.skipped)
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(folder / "0.png")  # a changed file: hashed anew
    changed = hashes.hash_paths(paths, tmp_path / "cache", progress=False)
    assert (changed.phash[0] != first.phash[0]).any()


def _write(path: Path, image: np.ndarray, fmt: str = "PNG") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format=fmt)
    return str(path)


def _folders(root: Path, internal_layout: str) -> tuple[Path, Path, dict[str, tuple[str, str]]]:
    """Write an internal and an external set of distinct faces in the two layouts, with planted copies."""
    faces = generate_faces(36, seed=13)[0]
    internal, external = root / "internal", root / "external"
    in_dir = ((lambda c: internal / "Data" / c) if internal_layout == "hfe"
              else (lambda c: internal / "train" / c.lower()))
    ex_dir = ((lambda c: external / "test" / c.lower()) if internal_layout == "hfe"
              else (lambda c: external / "Data" / c))
    if internal_layout == "hfe":
        (external / "train" / "happy").mkdir(parents=True)  # a real FER-2013 folder has both splits
    classes = ["Angry", "Fear", "Happy", "Sad", "Surprise"]
    for i in range(20):
        _write(in_dir(classes[i % 5]) / f"in_{i:02d}.png", faces[i])
    ex = [_write(ex_dir(classes[i % 5]) / f"ex_{i:02d}.png", faces[20 + i]) for i in range(12)]
    copies = {
        "exact": _write(in_dir("Happy") / "copy_exact.png", faces[20]),
        "near": _write(in_dir("Happy") / "copy_near.jpg",
                       quality.apply_transform(faces[21], "resize 96 + JPEG q75"), "JPEG"),
        "mirrored": _write(in_dir("Happy") / "copy_mirrored.png", quality.apply_transform(faces[22], "mirror")),
    }
    (in_dir("Sad") / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return internal, external, {k: (v, ex[n]) for n, (k, v) in enumerate(copies.items())}


@pytest.mark.parametrize("internal_layout", ["hfe", "fer"])
def test_cli_audit_writes_every_flagged_pair(tmp_path, capsys, internal_layout):
    internal, external, planted_pairs = _folders(tmp_path, internal_layout)
    out = tmp_path / "leakage.json"
    code = cli.main(["audit", "--internal", str(internal), "--external", str(external), "--json", str(out),
                     "--cache", str(tmp_path / "cache")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "internal vs external" in printed and "mirrored" in printed
    result = json.loads(out.read_text())
    pairs = result["pairs"]["internal_vs_external"]
    assert {(p["left_path"], p["right_path"]): p["kind"] for p in pairs} == {v: k for k, v in planted_pairs.items()}
    assert all(set(p) == {"left_path", "right_path", "kind", "distance"} for p in pairs)
    counts = result["summaries"]["internal_vs_external"]
    assert (counts["pairs_exact"], counts["pairs_near"], counts["pairs_mirrored"]) == (1, 1, 1)
    assert counts["n_left"] == 23 and counts["n_right"] == 12 and counts["right_flagged"] == 3
    assert result["summaries"]["train_vs_validation"]["pairs"] == 0  # distinct faces within the internal set
    skipped = result["data"]["internal"]["not_used"]
    assert [row["status"] for row in skipped] == ["skipped"] and skipped[0]["files"] == 1
    assert result["threshold"] == THRESHOLD


def test_cli_audit_reports_a_missing_folder(tmp_path, capsys):
    code = cli.main(["audit", "--internal", str(tmp_path / "nope"), "--external", str(tmp_path)])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_copies_planted_in_the_embedded_data_are_found(tmp_path):
    ds = embedded.write_embedded_dataset(tmp_path, n_internal=60, n_external=100, seed=3)
    truth = embedded.read_planted(ds.root)
    assert ds.n_planted == 5 and list(truth["transform"]) == list(embedded.PLANTED_TRANSFORMS)
    leak, _ = leakage.audit_folders(ds.internal_dir, ds.external_dir, tmp_path / "cache", progress=False)
    found = embedded.recovered(truth, leak.pairs["internal_vs_external"]).set_index("transform")["kind"]
    assert found.to_dict() == {"identical": "exact", "brightness +10%": "near", "contrast -10%": "near",
                               "JPEG q60": "near", "mirrored": "mirrored"}
    overlap = leak.external_overlap(leak.external["path"])
    assert overlap.sum() == leak.summaries["internal_vs_external"]["right_flagged"] >= 5


def test_examples_are_never_shown_for_the_shared_data(tmp_path):
    (tmp_path / "Data" / "Happy").mkdir(parents=True)
    own = detect_source(tmp_path, "internal")
    shared = DataSource("external", Path("/anywhere/shared/data/fer2013"), "fer-folder", Path("/x"), "test",
                        "parameter")
    assert examples_allowed("auto", own)[0] is True
    allowed, why = examples_allowed("auto", own, shared)
    assert allowed is False and "shared data" in why
    assert examples_allowed(False, own)[0] is False
    with pytest.raises(ValueError):
        examples_allowed("sometimes", own)


def test_counts_table_has_one_row_per_comparison():
    pairs = pd.DataFrame({"left": [0, 1, 1], "right": [0, 0, 2], "kind": ["exact", "near", "mirrored"],
                          "distance": [0, 10, 20], "left_path": ["a", "b", "b"], "right_path": ["x", "x", "z"]})
    summary = leakage.summarize(pairs, 10, 4)
    assert summary["right_flagged"] == 2 and summary["right_flagged_fraction"] == 0.5
    assert summary["pairs_near"] == 1 and summary["right_with_exact"] == 1
    table = leakage.counts_table({"a_vs_b": summary})
    assert table.loc["a_vs_b", "mirrored pairs"] == 1 and table.loc["a_vs_b", "left images flagged"] == 2


def test_fer2013_csv_rows_are_audited(tmp_path):
    faces = generate_faces(12, seed=4)[0]
    rows = [(i % 5 if i % 5 != 1 else 0, " ".join(map(str, f.ravel())), "Training") for i, f in enumerate(faces[:10])]
    rows += [(3, " ".join(map(str, faces[0].ravel())), "PublicTest"),  # the first training row again
             (4, " ".join(map(str, faces[11].ravel())), "PrivateTest")]
    csv = tmp_path / "fer2013.csv"
    pd.DataFrame(rows, columns=["emotion", "pixels", "Usage"]).to_csv(csv, index=False)
    leak, result = leakage.audit_folders(csv, csv, tmp_path / "cache", progress=False)
    pairs = result["pairs"]["internal_vs_external"]
    assert [(p["left_path"], p["right_path"], p["kind"]) for p in pairs] == [(f"{csv}#0", f"{csv}#10", "exact")]
    assert result["summaries"]["internal_vs_external"]["n_right"] == 2
