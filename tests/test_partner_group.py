"""Several saved networks of the same classes pooled with a model as one partner (their geometric mean), shipped
beside it as its own partners."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ferlib import cli
from ferlib.data import preprocess
from ferlib.models import pool_choice, shipped
from ferlib.photos.predict import EmotionClassifier


def test_two_partners_answer_as_one_and_ship_beside_the_model(seven_class_c1, tmp_path, capsys):
    from ferlib.champion import run
    from ferlib.evaluation.views import probabilities_per_view
    from ferlib.models.pooling import NetworkGroup, class_positions, geometric_mean, pooled_over_views

    root, champ = seven_class_c1
    others = [run.champion_from_folders("smoke", root / "fer", root / "fer", output_dir=root / "out",
                                        classes="fer2013-7", train_seed=seed).model_file for seed in (43, 44)]
    model = tmp_path / "seven.keras"
    for source, target in ((champ.model_file, model), (shipped.card_path(champ.model_file), shipped.card_path(model))):
        shutil.copy(source, target)
    code = cli.main(["pool", str(model), "--with", str(others[0]), "--with", str(others[1]), "--data",
                     str(root / "fer")])
    out, err = capsys.readouterr()
    assert f"by the weight of {others[0]} and {others[1]}" in out and code in (0, 3), err
    assert cli.main(["pool", str(model), "--with", str(others[0]), "--with", str(others[0]), "--data",
                     str(root / "fer")]) == 2 and "named twice" in capsys.readouterr().err

    # what pool does when the pooling is better: both shipped beside the model, found by file name, as one partner
    copies = pool_choice.ship_partners(model, dict(enumerate(others)), root / "fer")
    assert [c.name for c in copies.values()] == ["seven.partner.keras", "seven.partner2.keras"]
    named = [{"model": o.stem, "file": c.name, "sha256": shipped.sha256_of(c)} for o, c in zip(others, copies.values())]
    entry = named[0] | {"weight": 0.6, "also": named[1:]}
    card = json.loads(shipped.card_path(model).read_text())
    shipped.card_path(model).write_text(json.dumps(card | {"pooled_with": entry}))
    clf = EmotionClassifier.load(model, backend="keras")
    assert isinstance(clf.network.partner, NetworkGroup) and len(clf.network.partner.members) == 2
    alone, *partners = (EmotionClassifier.load(m, backend="keras") for m in (champ.model_file, *copies.values()))
    images = np.random.default_rng(0).integers(0, 256, (5, clf.image_size, clf.image_size, 3), dtype=np.uint8)
    faces = preprocess.preprocess_faces(images, clf.preprocessing)
    views = [probabilities_per_view(m.network, faces, *clf.tta) for m in (alone, *partners)]
    expected = pooled_over_views(views[0], geometric_mean(views[1:]), class_positions(clf.classes, clf.classes), 0.6)
    np.testing.assert_allclose(clf.raw_probabilities(images), expected, atol=1e-6)
    single = pooled_over_views(views[0], views[1], class_positions(clf.classes, clf.classes), 0.6)
    assert not np.allclose(expected, single, atol=1e-4)  # the second partner counts
    assert "2 more networks of its own, " in shipped.pooling_text(card | {"pooled_with": entry | {"chosen_on": {
        "accuracy": {"0.0": 0.5, "0.6": 0.6}, "mcnemar_vs_alone": {"n": 10, "p_value": 0.01}}}})
    pooled_card = shipped.card_path(model).read_text()
    code = cli.main(["pool", str(model), "--with", str(others[0]), "--data", str(root / "fer")])
    out, err = capsys.readouterr()  # a model pooled already: a new pooling must beat it too
    assert "against its pooling until now (" in out + err and (code == 0 or shipped.card_path(model).read_text() ==
                                                               pooled_card)
    stale = json.loads(pooled_card)
    stale["pooled_with"]["also"][0]["sha256"] = "0" * 64  # a partner replaced since: no pooling to beat any more
    shipped.card_path(model).write_text(json.dumps(stale))
    assert pool_choice.current_pooling(model, np.zeros(0), images, clf.tta) is None
    shipped.card_path(model).write_text(pooled_card)
    assert cli.main(["convert", str(model), "--data", str(root / "fer")]) == 0  # all three at one precision
    litert = json.loads(shipped.card_path(model).read_text())["pooled_with"]["litert"]
    group = EmotionClassifier.load(model).network.partner
    assert [m.path.name.endswith(".int8.tflite") for m in group.members] == [litert["default"] == "int8"] * 2

    # a partner copy already in its place stays; one that another copy would overwrite is refused
    before = copies[0].stat().st_mtime_ns
    pool_choice.ship_partners(model, {0: copies[0]})  # pooled again with the first alone: the second goes
    assert copies[0].stat().st_mtime_ns == before and not list(tmp_path.glob("seven.partner2.*"))
    assert sorted(p.name for p in tmp_path.glob("seven.partner.*")) == [
        "seven.partner.int8.tflite", "seven.partner.json", "seven.partner.keras", "seven.partner.tflite"]
    with pytest.raises(ValueError, match="would be overwritten"):
        pool_choice.ship_partners(model, {0: others[1], 1: copies[0]})
    assert copies[0].stat().st_mtime_ns == before
