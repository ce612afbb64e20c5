"""Model shapes, seeded training, per-epoch checkpoints, resuming an interrupted run, reusing a finished one."""
from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest

from ferlib.experiments import Phase, get_experiment
from ferlib.models.builders import build_model
from ferlib.training import train
from tests.conftest import tiny_data


def tiny_experiment(epochs=2, **changes):
    v1 = get_experiment("V1", "smoke")
    return dataclasses.replace(v1, image_size=24, phases=(Phase(epochs=epochs, learning_rate=1e-3),), **changes)


@pytest.mark.parametrize("size", [24, 48, 96])
def test_v1_outputs_five_probabilities_from_raw_pixels(size):
    model = build_model(dataclasses.replace(get_experiment("V1", "smoke"), image_size=size))
    probs = model.predict(np.full((3, size, size, 3), 200, dtype=np.uint8), verbose=0)
    assert probs.shape == (3, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)



@pytest.mark.slow
def test_training_is_seeded_and_reuses_a_finished_run(tmp_path):
    x, y = tiny_data()
    exp = tiny_experiment(epochs=2)
    a = train.train_experiment(exp, x, y, x, y, tmp_path / "a", "fp", seed=3, batch_size=16, verbose=0)
    b = train.train_experiment(exp, x, y, x, y, tmp_path / "b", "fp", seed=3, batch_size=16, verbose=0)
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-4)
    assert len(a.history) == 2 and not a.reused
    # once done, only what reuse needs is kept: the best model without optimizer state
    assert (a.run_dir / "phase1" / "best.keras").exists() and not (a.run_dir / "phase1" / "last.keras").exists()
    assert not (a.run_dir / "phase1" / "backup").exists()
    again = train.train_experiment(exp, x, y, x, y, tmp_path / "a", "fp", seed=3, batch_size=16, verbose=0)
    assert again.reused and again.run_dir == a.run_dir
    # a reused run still says where its weights were trained (commit, machine, start), not where it was loaded
    assert again.trained_by == a.trained_by and a.trained_by["started"] and a.trained_by["machine"]
    assert [s["epochs_before"] for s in a.trained_by["sessions"]] == [0]  # reusing a run is no training session
    assert a.trained_by["git_commit"] == json.loads((a.run_dir / "settings.json").read_text())["trained_by"][
        "git_commit"]
    np.testing.assert_allclose(again.model.predict(x, verbose=0), a.model.predict(x, verbose=0), rtol=1e-5)
    forced = train.train_experiment(exp, x, y, x, y, tmp_path / "a", "fp", seed=3, batch_size=16, verbose=0,
                                    force=True)
    assert not forced.reused


def test_a_run_survives_rewording_its_experiment_but_not_changing_it(tmp_path):
    """The run key hashes every field, prose included; a finished run whose title or notes were reworded
    since is found by its training settings and reused, while any training change still trains anew."""
    x, y = tiny_data()
    first = train.train_experiment(tiny_experiment(epochs=1), x, y, x, y, tmp_path, "fp", seed=3, batch_size=16,
                                   verbose=0, jit_compile=False)
    reworded = tiny_experiment(epochs=1, notes="new words", title="a new title")
    label = train.weights_label(reworded, None)
    assert train.run_key(reworded, "fp", 3, label) != first.run_dir.name.split("-", 1)[1]
    again = train.train_experiment(reworded, x, y, x, y, tmp_path, "fp", seed=3, batch_size=16, verbose=0,
                                   jit_compile=False)
    assert again.reused and again.run_dir.name == f"V1-{train.run_key(reworded, 'fp', 3, label)}"
    assert not first.run_dir.exists()  # renamed, not copied
    assert not train.adopt_reworded_run(tmp_path / "V1-new", tiny_experiment(epochs=2), "fp", 3, label)
    assert not train.adopt_reworded_run(tmp_path / "V1-new", reworded, "fp", 4, label)  # another seed
    assert train.adopt_reworded_run(tmp_path / "V1-new", tiny_experiment(epochs=1, notes="x"), "fp", 3, label)


@pytest.mark.slow
def test_a_first_phase_trained_alike_by_another_experiment_is_copied_not_retrained(tmp_path, monkeypatch):
    """V13's first phase is V12 (V5's is V4 where their budgets match): a run copies a finished first phase of the
    same settings, data, seed and weights from another experiment's run, and trains only what follows."""
    x, y = tiny_data()
    head = tiny_experiment(epochs=2)
    two = dataclasses.replace(head, key="V13", title="head, then more", notes="other words",
                              phases=(*head.phases, Phase(epochs=1, learning_rate=1e-4)))
    one = train.train_experiment(head, x, y, x, y, tmp_path, "fp", seed=3, batch_size=16, verbose=0)
    fitted, real_fit = [], train._fit_phase
    monkeypatch.setattr(train, "_fit_phase", lambda model, phase, d, job: fitted.append(d.name) or
                        real_fit(model, phase, d, job))
    both = train.train_experiment(two, x, y, x, y, tmp_path, "fp", seed=3, batch_size=16, verbose=0)
    assert fitted == ["phase2"] and both.run_dir != one.run_dir
    first = both.history[both.history["phase"] == 1].reset_index(drop=True)
    np.testing.assert_array_equal(first["val_loss"], one.history["val_loss"])
    done = json.loads((both.run_dir / train.DONE_FILE).read_text())
    assert done["timings"]["phase1"] == json.loads((one.run_dir / train.DONE_FILE).read_text())["timings"]["phase1"]
    assert done["wall_time_s"] >= done["timings"]["phase1"]["fit_s"]  # its training time counts the copied phase
    # another seed, other data or another first phase: trained, not copied
    for seed, data, changed in ((4, "fp", two), (3, "other", two),
                                (3, "fp", dataclasses.replace(two, class_weights=True))):
        fitted.clear()
        train.train_experiment(changed, x, y, x, y, tmp_path, data, seed=seed, batch_size=16, verbose=0)
        assert fitted == ["phase1", "phase2"], (seed, data)


def test_run_key_changes_with_settings_data_and_seed():
    exp = tiny_experiment()
    key = train.run_key(exp, "fp", 1)
    assert key == train.run_key(exp, "fp", 1)
    assert len({key, train.run_key(exp, "fp", 2), train.run_key(exp, "other", 1),
                train.run_key(tiny_experiment(epochs=3), "fp", 1)}) == 4


class Interrupt(keras.callbacks.Callback):
    """Stop the process-like run after a given epoch, as a crash or Ctrl-C would."""

    def __init__(self, after_epoch):
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.after_epoch:
            raise KeyboardInterrupt("simulated interruption")


@pytest.mark.slow
def test_interrupted_run_resumes_where_it_stopped(tmp_path, monkeypatch):
    x, y = tiny_data()
    exp = tiny_experiment(epochs=4)
    real_callbacks = train._callbacks
    monkeypatch.setattr(train, "_callbacks", lambda d, p, *a: real_callbacks(d, p, *a) + [Interrupt(after_epoch=1)])
    with pytest.raises(KeyboardInterrupt):
        train.train_experiment(exp, x, y, x, y, tmp_path, "fp", seed=0, batch_size=16, verbose=0)
    run_dir = next(tmp_path.iterdir())
    assert not (run_dir / train.DONE_FILE).exists()
    assert len((run_dir / "phase1" / "history.csv").read_text().strip().splitlines()) == 1 + 2
    monkeypatch.setattr(train, "_callbacks", real_callbacks)
    resumed = train.train_experiment(exp, x, y, x, y, tmp_path, "fp", seed=0, batch_size=16, verbose=0)
    assert resumed.run_dir == run_dir and not resumed.reused
    assert resumed.history["epoch"].tolist() == [1, 2, 3, 4]  # two epochs before, two after resuming
    done = json.loads((run_dir / train.DONE_FILE).read_text())
    assert done["best_epoch"] == int(resumed.history["val_loss"].idxmin()) + 1  # the monitored best, over both sessions
    # the training time counts the two epochs of the interrupted session too
    before = done["timings"]["phase1"]["fit_s_before_resuming"]
    assert 0 < before < done["timings"]["phase1"]["fit_s"] <= done["wall_time_s"]


@pytest.mark.slow
def test_class_weights_change_training(tmp_path):
    x, y = tiny_data()
    y = np.where(np.arange(len(y)) < 40, 2, y)  # make Happy dominant
    plain = train.train_experiment(tiny_experiment(epochs=1), x, y, x, y, tmp_path, "fp", seed=0,
                                   batch_size=16, verbose=0)
    weighted = train.train_experiment(tiny_experiment(epochs=1, class_weights=True), x, y, x, y, tmp_path,
                                      "fp", seed=0, batch_size=16, verbose=0)
    assert plain.history["loss"][0] != pytest.approx(weighted.history["loss"][0], rel=1e-3)


@pytest.mark.slow
def test_deterministic_training_gives_identical_histories(tmp_path):
    """With --deterministic (op determinism, one augmentation thread) the same seed gives the same numbers."""
    x, y = tiny_data(n=80)
    exp = tiny_experiment(epochs=2, augmentation="fer")
    runs = [train.train_experiment(exp, x, y, x, y, tmp_path / name, "fp", seed=5, batch_size=16, verbose=0,
                                   deterministic=True) for name in ("a", "b")]
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert runs[0].history[column].tolist() == runs[1].history[column].tolist(), column
    np.testing.assert_array_equal(runs[0].model.predict(x, verbose=0), runs[1].model.predict(x, verbose=0))


@pytest.mark.slow
def test_a_resumed_run_sees_what_an_uninterrupted_run_sees(tmp_path, monkeypatch):
    """Order, augmentation and dropout come from (seed, epoch): the epochs after a resume equal the same epochs of
    an uninterrupted run (before the fix, the first resumed epoch replayed epoch 1's order and augmentations)."""
    x, y = tiny_data(n=80)
    exp = _fer_tiny()
    whole = train.train_experiment(exp, x, y, x, y, tmp_path / "whole", "fp", seed=5, batch_size=16, verbose=0,
                                   deterministic=True)
    real_callbacks = train._callbacks
    monkeypatch.setattr(train, "_callbacks", lambda d, p, *a: real_callbacks(d, p, *a) + [Interrupt(after_epoch=1)])
    with pytest.raises(KeyboardInterrupt):
        train.train_experiment(exp, x, y, x, y, tmp_path / "cut", "fp", seed=5, batch_size=16, verbose=0,
                               deterministic=True)
    monkeypatch.setattr(train, "_callbacks", real_callbacks)
    resumed = train.train_experiment(exp, x, y, x, y, tmp_path / "cut", "fp", seed=5, batch_size=16, verbose=0,
                                     deterministic=True)
    assert resumed.history["epoch"].tolist() == [1, 2, 3, 4]
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(resumed.history[column], whole.history[column], rtol=1e-5, err_msg=column)
    # the run says where each part of its time was spent: a second session, after the two epochs logged before
    sessions = resumed.trained_by["sessions"]
    assert [s["epochs_before"] for s in sessions] == [0, 2] and all(s["machine"] and s["started"] for s in sessions)
    assert resumed.trained_by["started"] == sessions[0]["started"] and len(whole.trained_by["sessions"]) == 1
    np.testing.assert_allclose(resumed.model.predict(x, verbose=0), whole.model.predict(x, verbose=0), atol=1e-5)


def _fer_tiny(epochs=4):
    return dataclasses.replace(tiny_experiment(epochs=epochs, augmentation="fer"), backbone="fer_cnn",
                               filters=(8, 16), crop=20)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["killed between the history line and the backup", "backup damaged"])
def test_a_run_resumes_exactly_after_a_kill_inside_the_checkpointing_or_a_damaged_backup(tmp_path, monkeypatch,
                                                                                        fault):
    from ferlib.runtime.files import CacheRebuilt
    from ferlib.training import callbacks

    x, y = tiny_data(n=80)
    args = dict(seed=5, batch_size=16, verbose=0, deterministic=True)
    whole = train.train_experiment(_fer_tiny(), x, y, x, y, tmp_path / "whole", "fp", **args)
    real_save = callbacks.AtomicBackupAndRestore._save_model

    def save_then_stop(self):
        if self._current_epoch == 2 and fault.startswith("killed"):
            raise KeyboardInterrupt("killed after epoch 2 was logged, before its backup")
        real_save(self)
        if self._current_epoch == 2:
            raise KeyboardInterrupt("killed after the backup of epoch 2")

    monkeypatch.setattr(callbacks.AtomicBackupAndRestore, "_save_model", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train.train_experiment(_fer_tiny(), x, y, x, y, tmp_path / "cut", "fp", **args)
    monkeypatch.setattr(callbacks.AtomicBackupAndRestore, "_save_model", real_save)
    phase_dir = next((tmp_path / "cut").iterdir()) / "phase1"
    backups = sorted((phase_dir / "backup").glob("epoch-*"))
    if fault == "backup damaged":
        assert [b.name for b in backups] == ["epoch-0002"]
        (backups[0] / "latest.weights.h5").write_bytes(b"\x89HDF\r\n damaged")
        with pytest.warns(CacheRebuilt, match="training backup epoch-0002 is unusable"):
            resumed = train.train_experiment(_fer_tiny(), x, y, x, y, tmp_path / "cut", "fp", **args)
    else:
        assert [b.name for b in backups] == ["epoch-0001"]  # epoch 2 was logged, its backup never written
        assert len((phase_dir / "history.csv").read_text().splitlines()) == 1 + 2
        resumed = train.train_experiment(_fer_tiny(), x, y, x, y, tmp_path / "cut", "fp", **args)
    assert resumed.history["epoch"].tolist() == [1, 2, 3, 4]  # every epoch logged once
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(resumed.history[column], whole.history[column], rtol=1e-5, err_msg=column)


@pytest.mark.slow
def test_a_run_backed_up_by_keras_own_callback_resumes_where_it_stopped(tmp_path, monkeypatch):
    """Runs interrupted before backups were written whole (Keras' BackupAndRestore layout) resume at their epoch."""
    from ferlib.training import callbacks

    x, y = tiny_data(n=80)
    args = dict(seed=5, batch_size=16, verbose=0, deterministic=True)
    whole = train.train_experiment(_fer_tiny(), x, y, x, y, tmp_path / "whole", "fp", **args)
    real_callbacks = train._callbacks

    def keras_backup(phase_dir, phase, *rest):  # the callbacks as they were: Keras' backup and CSV logger
        kept = [c for c in real_callbacks(phase_dir, phase, *rest)
                if not isinstance(c, callbacks.AtomicBackupAndRestore)]
        return kept + [keras.callbacks.BackupAndRestore(str(phase_dir / "backup")),
                       keras.callbacks.CSVLogger(str(phase_dir / "history.csv"), append=True),
                       Interrupt(after_epoch=1)]

    monkeypatch.setattr(train, "_callbacks", keras_backup)
    with pytest.raises(KeyboardInterrupt):
        train.train_experiment(_fer_tiny(), x, y, x, y, tmp_path / "cut", "fp", **args)
    monkeypatch.setattr(train, "_callbacks", real_callbacks)
    backup = next((tmp_path / "cut").iterdir()) / "phase1" / "backup"
    assert (backup / "latest.weights.h5").is_file() and not list(backup.glob("epoch-*"))
    resumed = train.train_experiment(_fer_tiny(), x, y, x, y, tmp_path / "cut", "fp", **args)
    assert resumed.history["epoch"].tolist() == [1, 2, 3, 4]
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(resumed.history[column], whole.history[column], rtol=1e-5, err_msg=column)
    # the run says where each part of its time was spent: a second session, after the two epochs logged before
    sessions = resumed.trained_by["sessions"]
    assert [s["epochs_before"] for s in sessions] == [0, 2] and all(s["machine"] and s["started"] for s in sessions)
    assert resumed.trained_by["started"] == sessions[0]["started"] and len(whole.trained_by["sessions"]) == 1


@pytest.mark.parametrize("changes,message", [
    ({"backbone": "vgg99"}, "backbone must be one of"),
    ({"augmentation": "sepia"}, "augmentation must be one of 'none', 'geometric', 'photometric', 'fer'"),
    ({"optimizer": "sgd"}, "optimizer must be one of 'adam', 'adamw'"),
    ({"schedule": "step"}, "schedule must be one of"),
    ({"image_size": 0}, "image_size must be above 0"),
    ({"phases": ()}, "at least one phase"),
])
def test_experiments_are_checked_when_made(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(get_experiment("V1", "smoke"), **changes)


def test_phases_and_profiles_are_checked_when_made():
    from ferlib.config import PROFILES

    with pytest.raises(ValueError, match="monitor must be one of 'val_loss', 'val_accuracy'"):
        Phase(epochs=1, learning_rate=1e-3, monitor="val_acc")
    with pytest.raises(ValueError, match="epochs must be above 0"):
        Phase(epochs=0, learning_rate=1e-3)
    with pytest.raises(ValueError, match="weights must be 'imagenet', 'random' or 'auto'"):
        dataclasses.replace(PROFILES["cpu"], weights="imagenet21k")
    with pytest.raises(ValueError, match="batch_size must be above 0"):
        dataclasses.replace(PROFILES["cpu"], batch_size=0)


def test_a_kill_between_fit_and_the_phase_mark_resumes_without_training_again(tmp_path, monkeypatch):
    x, y = tiny_data()
    exp = tiny_experiment(epochs=2)
    real = train._write_json

    def killed(path, payload):  # the process dies right after fit, before the phase's done.json
        if path.name == train.DONE_FILE and path.parent.name == "phase1":
            raise KeyboardInterrupt("killed")
        real(path, payload)

    monkeypatch.setattr(train, "_write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        train.train_experiment(exp, x, y, x, y, tmp_path, "fp", seed=0, batch_size=16, verbose=0)
    monkeypatch.setattr(train, "_write_json", real)
    monkeypatch.setattr(train, "_fit_phase", lambda *a, **k: pytest.fail("the finished phase was trained again"))
    resumed = train.train_experiment(exp, x, y, x, y, tmp_path, "fp", seed=0, batch_size=16, verbose=0)
    assert resumed.history["epoch"].tolist() == [1, 2]  # no epoch logged twice
    assert resumed.wall_time_s > 0


def test_overfitting_is_said_in_words_with_its_epoch_or_its_absence():
    import pandas as pd

    from ferlib.training.experiments import overfitting, overfitting_sentence

    rising = pd.DataFrame({"epoch": [1, 2, 3, 4], "val_loss": [1.5, 1.2, 1.3, 1.45], "accuracy": [.3, .5, .6, .7],
                           "val_accuracy": [.3, .4, .45, .44]})
    result = {"overfitting": overfitting(rising), "history": rising.to_dict(orient="list")}
    assert overfitting_sentence(result) == "validation loss lowest at epoch 2 of 4 (1.200), then rose 0.250 by the last"
    falling = rising.assign(val_loss=[1.5, 1.4, 1.3, 1.2])
    result = {"overfitting": overfitting(falling), "history": falling.to_dict(orient="list")}
    assert overfitting_sentence(result).startswith("validation loss lowest at the last epoch (1.200)")


def test_a_model_trained_in_bfloat16_is_scored_and_saved_in_float32():
    """Mixed precision keeps float32 weights: the float32 copy has the same weights, computes in float32
    everywhere, and predicts what the bfloat16 model predicts up to bfloat16's rounding."""
    from ferlib.models.builders import build_fer_cnn, float32_copy

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = build_fer_cnn(24, (8, 16), crop=20)
    finally:
        keras.config.set_dtype_policy(previous)
    assert {layer.dtype_policy.name for layer in mixed.layers} >= {"mixed_bfloat16"}
    copy = float32_copy(mixed)
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    for a, b in zip(copy.get_weights(), mixed.get_weights()):
        np.testing.assert_array_equal(a, b)
    x, _ = tiny_data(n=20)
    np.testing.assert_allclose(copy.predict(x, verbose=0), mixed.predict(x, verbose=0), atol=0.05)
    assert float32_copy(copy) is copy  # already float32: returned as it is


def test_weight_average_is_validated_and_checkpointed_while_training_uses_the_weights():
    """Polyak averaging: validation and the end-of-epoch checkpoints see the optimizer's moving average of the
    weights; after them the weights themselves are back in the model (and the average in the optimizer), so
    training and the backup continue from where training left them."""
    from ferlib.training.callbacks import PolyakAverage

    x, y = tiny_data(n=40, size=8, seed=5)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(5)])
    model.compile(keras.optimizers.Adam(1e-2, use_ema=True, ema_momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    seen: dict[str, list] = {"checkpoint": [], "backup": []}

    class Probe(keras.callbacks.Callback):
        def __init__(self, when):
            super().__init__()
            self.when = when

        def on_epoch_end(self, epoch, logs=None):
            opt = self.model.optimizer
            seen[self.when].append(([keras.ops.convert_to_numpy(v) for v in opt._trainable_variables],
                                    [keras.ops.convert_to_numpy(a) for a in opt._model_variables_moving_average],
                                    logs["val_loss"]))

    average = PolyakAverage()
    model.fit(x.astype("float32") / 255, y, validation_data=(x.astype("float32") / 255, y), epochs=2, verbose=0,
              batch_size=8, callbacks=[average, Probe("checkpoint"), average.restorer, Probe("backup")])
    for (ck_weights, ck_avg, val_loss), (bk_weights, bk_avg, _) in zip(seen["checkpoint"], seen["backup"]):
        for a, b in zip(ck_weights, bk_avg):  # at the checkpoint the model holds what the optimizer holds after
            np.testing.assert_array_equal(a, b)
        for a, b in zip(ck_avg, bk_weights):
            np.testing.assert_array_equal(a, b)
        assert not np.allclose(ck_weights[0], bk_weights[0])  # the average is not the weights
        probe = keras.models.clone_model(model)
        probe.set_weights(ck_weights)
        probe.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        assert probe.evaluate(x.astype("float32") / 255, y, verbose=0) == pytest.approx(val_loss, rel=1e-4)
    assert not average.average_in_model


def test_the_machine_names_the_cpu_features_that_set_training_speed():
    """Cloud CPUs often report a bare model name: its model number and the features that decide bfloat16's speed
    tell them apart."""
    from ferlib.evaluation.results import cpu_model

    def cpuinfo(name: str, model: str, flags: str) -> str:
        return f"cpu family\t: 6\nmodel\t\t: {model}\nmodel name\t: {name}\nflags\t\t: {flags}\n"

    bare = "Intel(R) Xeon(R) Processor"
    sapphire, emerald = (cpuinfo(bare, model, "fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile")
                         for model in ("143", "207"))
    assert cpu_model(emerald).startswith("Intel(R) Xeon(R) Processor, family 6 model 207 (AVX-512, AVX512_BF16, AMX), ")
    assert cpu_model(sapphire) != cpu_model(emerald), "a bare name must not hide which generation trained"
    older = cpuinfo("AMD EPYC 7B12", "49", "fpu sse avx2")
    assert cpu_model(older).startswith("AMD EPYC 7B12, ") and cpu_model(older).endswith(" cores")


def test_a_run_begun_before_sessions_were_recorded_keeps_its_first_session(tmp_path):
    from ferlib.training.run_folders import record_training_session

    legacy = {"git_commit": "abc", "machine": "an older CPU, 2 cores; no GPU", "started": "2026-11-29T01:00:00+00:00"}
    (tmp_path / "phase1").mkdir()
    (tmp_path / "phase1" / "history.csv").write_text("epoch,loss\n0,1.0\n1,0.9\n2,0.8\n")
    resumed = record_training_session(tmp_path, legacy, n_phases=1)
    first, now = resumed["sessions"]
    assert first == {"started": legacy["started"], "machine": legacy["machine"], "git_commit": "abc",
                     "epochs_before": 0}
    assert now["epochs_before"] == 3 and now["started"] != legacy["started"]
    assert {k: resumed[k] for k in legacy} == legacy  # trained_by still names the first training start
