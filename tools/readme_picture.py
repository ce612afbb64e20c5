"""Draw docs/overview.png, the README's picture: a generated photo with its faces found and classified by a
model, beside its confusion matrix from `python -m ferlib evaluate --json` (DATA names the images scored).

    .venv/bin/python -m ferlib evaluate --data /path/to/fer2013/test --json evaluation.json
    .venv/bin/python tools/readme_picture.py fer2013-7 evaluation.json "FER-2013 PublicTest, original pixels"

The photo is generated: real photos and FER-2013 images are third-party data, never committed.
"""
from __future__ import annotations

import io
import json
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from PIL import Image  # noqa: E402

from ferlib import EmotionClassifier  # noqa: E402
from ferlib.data.decode import read_image  # noqa: E402
from ferlib.photos.synthetic_photos import write_synthetic_photos  # noqa: E402
from ferlib.viz.photo_figures import draw_predictions  # noqa: E402


def main(model: str, evaluation: Path, data: str, out: Path) -> Path:
    """Write the picture and return its path."""
    clf = EmotionClassifier.load(model)
    with tempfile.TemporaryDirectory() as tmp:
        placed = write_synthetic_photos(tmp, n_photos=8, seed=3, max_faces=4).groupby("file").size()
        found = {name: clf.predict(Path(tmp) / "photos" / name) for name in placed.index}
        # the photo with the most faces, among those where the detector found every face placed
        complete = [name for name in placed.index if len(found[name]) == placed[name]] or list(placed.index)
        name = max(complete, key=lambda n: (len(found[n]), n))
        drawn = draw_predictions(read_image(Path(tmp) / "photos" / name)[0], found[name])
    scores = json.loads(evaluation.read_text())
    confusion = np.asarray(scores["confusion"], dtype=float)
    confusion = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), gridspec_kw={"width_ratios": [1.35, 1]})
    left.imshow(drawn)
    left.axis("off")
    left.set_title("faces found and classified (a generated photo)", fontsize=11)
    sns.heatmap(confusion, annot=True, fmt=".2f", cmap="Blues", cbar=False, ax=right, vmin=0, vmax=1,
                xticklabels=scores["classes"], yticklabels=scores["classes"])
    right.set(xlabel="predicted", ylabel="true")
    right.tick_params(axis="x", rotation=30)
    right.set_title(f"{scores['model']['name']}: {scores['accuracy']:.1%} on {data}\n(n = {scores['n']:,}, "
                    "rows: the true class)", fontsize=11)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.open(buffer).convert("P", palette=Image.Palette.ADAPTIVE, colors=128).save(out, optimize=True)
    return out


if __name__ == "__main__":
    if len(sys.argv) < 4:
        print(__doc__)
        raise SystemExit(2)
    target = Path(sys.argv[4]) if len(sys.argv) > 4 else Path(__file__).resolve().parents[1] / "docs" / "overview.png"
    print(f"wrote {main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], target)}")
