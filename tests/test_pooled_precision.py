"""A pooled model's two networks run at one LiteRT precision, chosen for the pool as users run it."""
from __future__ import annotations

import json
import shutil

import pytest

from ferlib import cli
from ferlib.models import pool_choice, shipped, shipping
from ferlib.photos.predict import EmotionClassifier


def test_a_pooled_models_two_networks_run_at_the_litert_precision_chosen_for_the_pool(seven_class_c1, tmp_path,
                                                                                       capsys):
    root, champ = seven_class_c1
    model = tmp_path / "seven.keras"
    for source, target in ((champ.model_file, model), (shipped.card_path(champ.model_file), shipped.card_path(model))):
        shutil.copy(source, target)
    copy = pool_choice.ship_partner(model, champ.model_file, root / "fer")  # the same weights: mechanics only
    card = json.loads(shipped.card_path(model).read_text())
    entry = {"model": "twin", "file": copy.name, "sha256": shipped.sha256_of(copy), "weight": 0.5}
    shipped.card_path(model).write_text(json.dumps(card | {"pooled_with": entry}))
    assert cli.main(["convert", str(model), "--data", str(root / "fer")]) == 0  # the model's own files, then the pool
    assert "pooled with twin: its networks at " in capsys.readouterr().out
    card = json.loads(shipped.card_path(model).read_text())
    litert = card["pooled_with"]["litert"]
    assert set(litert["precisions"]) == {"float32", "int8"}
    assert f"the {card['data']['n_val']:,} validation faces" in litert["compared_on"]
    assert litert["default"] == "float32" or litert["precisions"]["int8"]["accuracy"] >= litert["precisions"][
        "float32"]["accuracy"]
    int8, float32 = litert["precisions"]["int8"], litert["precisions"]["float32"]
    test = int8["mcnemar_vs_float32"]
    assert test["only_a"] - test["only_b"] == round(test["n"] * (float32["accuracy"] - int8["accuracy"]))

    def files(**load):  # the LiteRT files a load runs, the model's and its partner's
        network = EmotionClassifier.load(model, **load).network
        return network.own.path.name, network.partner.path.name

    for chosen in ("int8", "float32"):  # both networks at the pool's precision, whatever each card says alone
        shipped.card_path(model).write_text(json.dumps(card | {"pooled_with": entry | {"litert": litert | {
            "default": chosen}}}))
        suffix = ".int8.tflite" if chosen == "int8" else ".tflite"
        assert files() == (f"seven{suffix}", f"seven.partner{suffix}")
    assert files(precision="int8") == ("seven.int8.tflite", "seven.partner.int8.tflite")  # asked: as asked
    chosen_on = {"accuracy": {"0.0": 0.5, "0.5": 0.6}, "mcnemar_vs_alone": {"n": 10, "p_value": 0.01}}
    assert "; with LiteRT both at int8)" in shipped.pooling_text({"pooled_with": entry | {
        "litert": {"default": "int8"}, "chosen_on": chosen_on}})
    shipped.card_path(model).write_text(json.dumps(card | {"pooled_with": entry}))  # none chosen: each its own
    defaults = (json.loads(shipped.card_path(m).read_text())["litert"]["default"] for m in (model, copy))
    assert files() == tuple(shipping.litert_path(m, d).name for m, d in zip((model, copy), defaults))
    # a choice whose files are no longer the ones the cards vouch for is not used, and convert without data drops it
    shipped.card_path(model).write_text(json.dumps(card | {"pooled_with": entry | {"litert": litert | {
        "default": "int8"}}}))
    shipping.convert_for_litert(copy, None, ("float32",))  # the partner's int8 file: no longer in its card
    assert files() == (shipping.litert_path(model, card["litert"]["default"]).name, "seven.partner.tflite")
    assert cli.main(["convert", str(model)]) == 0 and "give --data to choose one" in capsys.readouterr().out
    assert "litert" not in json.loads(shipped.card_path(model).read_text())["pooled_with"]
    with pytest.raises(ValueError, match="is not pooled"):
        pool_choice.choose_pooled_precision(champ.model_file, root / "fer")
