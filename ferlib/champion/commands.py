"""The command-line commands of C1's life: champion, ablate, distill, ship, calibrate, pool and convert.

`ferlib.cli` adds them to its parser with `add_champion_commands` and hands their arguments to
`run_champion_command`. Training imports TensorFlow, so each command imports its module when it runs: `--help`
and the other commands start without it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ferlib.champion.recipe import ABLATIONS, FINE_TUNE_EPOCHS, RECIPE, TEACHERS
from ferlib.classes import CLASS_SETS, PREPROCESSINGS
from ferlib.evaluation.stats import p_value_text
from ferlib.experiments import DISTILL_WEIGHT
from ferlib.models import shipped

CHAMPION_COMMANDS = ("champion", "ablate", "distill", "ship", "calibrate", "pool", "convert")


def add_champion_commands(sub) -> None:
    """Add C1's commands to the command line's sub-parsers."""
    for name, what in (("champion", "train C1, the CPU champion, and score it with and without flip averaging"),
                       ("ablate", "train C1's ablation variants with a shortened epoch budget"),
                       ("distill", "train C1 with more seeds on the champion's split, score their ensemble, and "
                                   "distil it into one C1-sized network")):
        cmd = sub.add_parser(name, help=what)
        cmd.add_argument("--data", type=Path, default=None, help="internal data (default: env, Kaggle, embedded)")
        cmd.add_argument("--external", type=Path, default=None, help="external test data" + (
            " (only names the results folder; give the champion's)" if name == "ablate" else ""))
        cmd.add_argument("--profile", default="cpu")
        cmd.add_argument("--seed", type=int, default=42)
        cmd.add_argument("--output-dir", type=Path, default=None, help="default: <project>/outputs")
        if name != "distill":
            cmd.add_argument("--force", action="store_true", help="retrain finished runs")
        if name == "champion":
            cmd.add_argument("--epochs", type=int, default=None,
                             help="train the recipe for this many epochs instead of the profile's (its own run, "
                                  "result C1_<N>epochs-seed<seed>.json and model; a point of the learning curve)")
            cmd.add_argument("--variant", default=None,
                             help="train the recipe changed as this ablation variant changes it (e.g. mixup_0.2), "
                                  "as C1_<variant>_<N>epochs: a candidate to ship, compared with the recipe in the "
                                  "ablation of its budget")
            cmd.add_argument("--classes", default=None, choices=list(CLASS_SETS),
                             help="the class set to learn (default: the study's five, study-5; fer2013-7: "
                                  "FER-2013's seven, the model for photos); its results and model go to a folder "
                                  "of their own")
            cmd.add_argument("--fine-tune", default=None, choices=list(PREPROCESSINGS), metavar="PREPROCESSING",
                             help="train the shipped model of --classes further (--epochs, default "
                                  f"{FINE_TUNE_EPOCHS}) at a quarter of the recipe's rate, faces preprocessed so "
                                  f"({', '.join(PREPROCESSINGS)}), on the data and seed it learned; as "
                                  "C1_finetuned_<N>ep, a candidate to ship")
            cmd.add_argument("--train-seed", type=int, default=None,
                             help="train from scratch with this seed for initialisation, epoch order and "
                                  "augmentation, on the split --seed draws (as <name>_train<N>): an independent "
                                  "network to `pool` the shipped model with")
        if name == "ablate":
            cmd.add_argument("--epochs", type=int, default=8,
                             help="epoch budget of every variant (default 8; results of another budget are named "
                                  "by it, C1_ablation_<variant>_<N>epochs, and compared with C1 at that budget)")
            cmd.add_argument("--variants", default=None, help="comma-separated variant names (default: all)")
            cmd.add_argument("--max-train", type=int, default=None,
                             help="train every variant on the same stratified subset of this many images")
        if name == "distill":
            cmd.add_argument("--teachers", type=int, default=TEACHERS,
                             help=f"ensemble members, the champion included (default {TEACHERS})")
            cmd.add_argument("--weight", type=float, default=DISTILL_WEIGHT,
                             help="the teachers' share of the training targets, the one-hot label's is the rest "
                                  f"(default {DISTILL_WEIGHT})")
    _add_shipping_commands(sub)


def _add_shipping_commands(sub) -> None:
    """Add the commands that make a trained champion the shipped model: ship, calibrate, pool and convert."""
    ship = sub.add_parser("ship", help="make a saved champion the shipped model (ferlib/assets/), used when "
                                       "predict and evaluate get no --model")
    ship.add_argument("model", type=Path, help="a champion saved by `python -m ferlib champion` (.keras with card)")
    ship.add_argument("--data", type=Path, default=None,
                      help="the internal data both models were trained on: first compare them on its validation "
                           "split and ship only a model McNemar finds better (p < 0.05)")
    ship.add_argument("--force", action="store_true", help="with --data: ship even when it is not better")
    calibrate = sub.add_parser("calibrate", help="choose the face preprocessing a saved model gets at inference and "
                                                 "refit its temperature and abstention threshold, on the validation "
                                                 "split it was chosen on; then check its LiteRT files again")
    calibrate.add_argument("model", type=Path, nargs="?", default=None,
                           help="a .keras model with its card (default: the shipped one, ferlib/assets/)")
    calibrate.add_argument("--data", type=Path, required=True, help="the internal data the model was trained on")
    pool = sub.add_parser("pool", help="pool a saved model with another network (a weighted geometric mean "
                                       "of their probabilities), its weight chosen on the validation faces neither "
                                       "trained on; recorded in the card only when McNemar finds it better "
                                       "(p < 0.05) there")
    pool.add_argument("model", help="a shipped model's name (e.g. fer2013-5) or a .keras model with its card")
    pool.add_argument("--with", dest="partner", required=True, action="append",
                      help=f"the network to pool with: a shipped model ({', '.join(shipped.SHIPPED_MODELS)}) or a "
                           ".keras model with its card (e.g. from `champion --train-seed`; copied beside the model "
                           "when pooled); it must know two or more of the model's classes. Given again: networks of "
                           "the same classes answering as one (the geometric mean of their probabilities)")
    pool.add_argument("--data", type=Path, required=True, help="the internal data both were trained on")
    convert = sub.add_parser("convert", help="write the LiteRT file (.tflite) of a saved model beside it, checked "
                                             "against Keras, and record it in the card (predict then runs it)")
    convert.add_argument("model", nargs="?", default=None,
                         help="a shipped model's name or a .keras model with its card (default: the shipped "
                              f"{shipped.DEFAULT_MODEL}); a pooled model's pool gets its precision too (with --data)")
    convert.add_argument("--data", type=Path, default=None,
                         help="the internal data the model was trained on: compare the two backends on its "
                              "validation split (default: on generated images)")
    convert.add_argument("--precisions", default="float32,int8",
                         help="LiteRT files to write (default float32,int8; float16 too if asked): float32 must "
                              "agree with Keras, a quantized one becomes the default only when it is as accurate on "
                              "the validation split and faster")


def run_champion_command(args: argparse.Namespace) -> int:
    """Run one of CHAMPION_COMMANDS; return the exit code."""
    runners = {"champion": _champion_or_ablate, "ablate": _champion_or_ablate, "distill": _distill, "ship": _ship,
               "calibrate": _calibrate, "pool": _pool, "convert": _convert}
    return runners[args.command](args)


def _champion_or_ablate(args: argparse.Namespace) -> int:
    from ferlib.champion import ablation, run  # lazy: training imports TensorFlow

    if args.command == "champion":
        variants = [name for name in ABLATIONS if name != RECIPE]
        if args.variant is not None and args.variant not in variants:
            print(f"error: unknown variant {args.variant!r}; known: {', '.join(variants)}", file=sys.stderr)
            return 2
        if args.variant is not None and args.fine_tune is not None:
            print("error: --fine-tune continues the shipped model's recipe; it takes no --variant", file=sys.stderr)
            return 2
        if args.train_seed is not None and (args.train_seed < 0 or args.train_seed == args.seed
                                            or args.fine_tune is not None):
            print(f"error: --train-seed {args.train_seed}: a network of its own needs a training seed >= 0 other "
                  f"than --seed ({args.seed}), from scratch (not with --fine-tune)", file=sys.stderr)
            return 2
        try:
            champ = run.champion_from_folders(args.profile, args.data, args.external, args.seed, args.output_dir,
                                              args.force, args.epochs, args.variant, args.classes, args.fine_tune,
                                              args.train_seed)
        except run.SplitMismatch as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        result = champ.result
        scores = {"validation": result["validation_scores"], "external": result.get("external_scores"),
                  "test_time_mode": result["tta"], "external_by_copy": result.get("external_by_copy")}
        print(json.dumps({"training_time_s": round(result["training_time_s"], 1), "epochs": result["epochs_run"],
                          **scores}, indent=2))
        _print_goal_and_ablation(result)
        print(f"wrote {champ.result_file}")
        print(f"saved {champ.model_file} with its model card")
        if args.train_seed is not None:
            target = shipped.SHIPPED_FOR_CLASSES[champ.outcome.experiment.classes]
            print(f"to pool the shipped model with it: python -m ferlib pool {target} --with {champ.model_file} "
                  "--data DIR")
        else:
            print(f"to make it the model `predict` uses by default: python -m ferlib ship {champ.model_file}")
        return 0
    names = args.variants.split(",") if args.variants else list(ABLATIONS)
    unknown = [name for name in names if name not in ABLATIONS]
    if unknown:
        print(f"error: unknown ablation variant(s) {', '.join(unknown)}; known: {', '.join(ABLATIONS)}",
              file=sys.stderr)
        return 2
    table, csv = ablation.ablation_from_folders(args.profile, args.data, args.epochs, names, args.seed,
                                                args.output_dir, args.force, args.max_train, args.external)
    print(table.round(4).to_string())
    print(f"wrote {csv}")
    return 0


def _print_goal_and_ablation(result: dict) -> None:
    """Print where the test accuracy stands against the goal, and the ablation found beside the result."""
    goal = result.get("goal") or {}
    if goal.get("test_accuracy") is not None:
        verdict = (f"does not apply: {goal['not_applicable']}" if goal.get("not_applicable")
                   else "reached" if goal["reached"] else "not reached")
        print(f"test accuracy {goal['test_accuracy']:.1%} ({result['tta']['mode']}, chosen on validation): "
              f"goal {goal['goal']:.0%} on FER-2013's five-class test images {verdict}, aim {goal['aim']:.0%}")
    for ablation in [result.get("ablation"), *(result.get("ablation_other_budgets") or [])]:
        if not ablation:
            continue
        images = f", {ablation['max_train']} training images" if ablation.get("max_train") else ""
        print(f"ablation at {', '.join(map(str, ablation['epochs']))} epochs{images} ({ablation['compared_on']}):")
        for row in ablation["variants"]:
            diff, p = row.get("vs champion (flip TTA)"), row.get("McNemar p vs champion")
            print(f"  {row['variant']:<24} {row['val accuracy (flip TTA)']:.1%}"
                  + (f"  {100 * diff:+.1f} points, McNemar {p_value_text(p)}" if diff is not None and p is not None
                     else ""))


def _distill(args: argparse.Namespace) -> int:
    from ferlib.champion import distillation  # lazy: training imports TensorFlow

    student = distillation.distill_from_folders(args.profile, args.data, args.external, args.seed, args.output_dir,
                                                args.teachers, args.weight)
    result = student.result
    print(json.dumps({"ensemble": {k: result["ensemble"].get(k) for k in ("members", "train_seeds", "tta",
                                                                          "validation_scores", "external")},
                      "student": {"validation": result["validation_scores"], "external": result.get("external_scores"),
                                  "test_time_mode": result["tta"], "external_by_copy": result.get("external_by_copy"),
                                  "training_time_s": round(result["training_time_s"], 1)},
                      "versus_champion": result["versus_champion"]}, indent=2))
    print(f"wrote {student.result_file}")
    print(f"saved {student.model_file} with its model card")
    print(f"to make it the model `predict` uses by default: python -m ferlib ship {student.model_file}")
    return 0


def _ship(args: argparse.Namespace) -> int:
    from ferlib.models import shipping  # lazy: shipping converts with TensorFlow

    comparison = None
    try:
        name = shipping.shipped_name(json.loads(args.model.with_suffix(".json").read_text()))
        first = not (shipped.ASSETS / shipped.SHIPPED_MODELS[name]).is_file()
        if first:
            print(f"no {name} model is shipped yet: {args.model} becomes it")
        if args.data is not None and not first:
            comparison = shipping.compare_on_validation(args.model, args.data)
            c, s, test = comparison["candidate"], comparison["shipped"], comparison["mcnemar"]
            print(f"validation ({comparison['split']['n']:,} images, the split both were chosen on): candidate "
                  f"{c['accuracy']:.1%} ({c['views']}), shipped {s['accuracy']:.1%} ({s['views']}); difference "
                  f"{100 * comparison['difference']:+.1f} points, McNemar {p_value_text(test['p_value'])}")
            better, why = shipped.ship_verdict(comparison)
            if not better and not args.force:
                print(f"error: not shipped: {args.model} against the shipped model: {why} "
                      "(--force ships it anyway)", file=sys.stderr)
                return 3
        card = shipping.ship_model(args.model, comparison=comparison, data_dir=args.data)
    except (ValueError, OSError) as exc:
        print(f"error: cannot ship {args.model}: {exc}", file=sys.stderr)
        return 2
    print(f"shipped {shipped.describe_shipped(card)}")
    print(_described_conversion(card["litert"]))
    made = ", ".join(e["file"] for e in card["litert"]["precisions"].values())
    print(f"wrote {shipped.ASSETS / shipped.SHIPPED_MODELS[name]}, {made} and their card; commit them all to ship "
          "them")
    for other in shipped.SHIPPED_MODELS:  # a model pooled with the replaced network refuses to load until re-pooled
        other_card = shipped.read_card(shipped.ASSETS / shipped.SHIPPED_MODELS[other]) or {}
        entry = other_card.get("pooled_with") or {}
        if other != name and entry.get("model") == name and not entry.get("file"):
            print(f"{other} was pooled with the previous {name}: pool it again with `python -m ferlib pool {other} "
                  f"--with {name} --data DIR`")
    return 0


def _described_conversion(entry: dict) -> str:
    lines = [f"LiteRT against Keras on the {entry['compared_on']}:"]
    for precision, e in entry["precisions"].items():
        agreed = e["agreement_with_keras"]
        accuracy = f", accuracy {e['accuracy']:.2%}" if "accuracy" in e else ""
        lines.append(f"  {precision} ({e['file']}, {e['size_bytes'] / 1e6:.1f} MB): same label on "
                     f"{agreed['same_label']:.2%}, probabilities at most {agreed['max_probability_difference']:.1e} "
                     f"apart{accuracy}, {e['median_ms']:.1f} ms per 40 images")
    lines.append(f"default precision: {entry['default']} ({entry['why']})")
    return "\n".join(lines)


def _pool(args: argparse.Namespace) -> int:
    from ferlib.models import pool_choice  # lazy: choosing imports TensorFlow

    try:
        model = shipped.resolve_model(args.model, "model")
        entry = pool_choice.fit_pooling(model, args.partner, args.data)
    except (ValueError, OSError) as exc:
        print(f"error: cannot pool {args.model} with {' and '.join(args.partner)}: {exc}", file=sys.stderr)
        return 2
    chosen, test = entry["chosen_on"], entry["chosen_on"]["mcnemar_vs_alone"]
    print(f"accuracy on {chosen['split']}, by the weight of {' and '.join(args.partner)}: " + ", ".join(
        f"{w} {accuracy:.2%}" for w, accuracy in chosen["accuracy"].items()))
    said = (f"weight {entry['weight']:.1f} against the model alone: {test['only_b']} faces gained, {test['only_a']} "
            f"lost, McNemar {p_value_text(test['p_value'])}")
    if before := chosen.get("mcnemar_vs_before"):
        said += (f"; against its pooling until now ({chosen['pooled_before']:.2%}): {before['only_b']} gained, "
                 f"{before['only_a']} lost, McNemar {p_value_text(before['p_value'])}")
    if not entry["pooled"]:
        print(f"error: not pooled: {said} (pooling needs a gain with p < {shipped.SHIP_ALPHA:g}, over the model "
              "alone and over its pooling until now)", file=sys.stderr)
        return 3
    calibration = json.loads(shipped.card_path(model).read_text())["calibration"]
    files = [model.with_name(e["file"]).name for e in shipped.partner_entries(entry) if e.get("file")]
    copied = f"{', '.join(files)} (with their cards and LiteRT files) beside it and " if files else ""
    print(f"pooled: {said}; temperature {calibration['temperature']}, abstains below "
          f"{calibration['abstain_below']}; wrote {copied}{shipped.card_path(model)}")
    if entry.get("litert"):
        print(f"LiteRT: all its networks at {entry['litert']['default']} ({entry['litert']['why']})")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from ferlib.models import shipping  # lazy: shipping imports TensorFlow

    model = args.model or shipped.shipped_model_path()
    try:
        entry = shipping.choose_preprocessing(model, args.data)
        card = json.loads(shipped.card_path(model).read_text())
        conversion = shipping.convert_for_litert(model, args.data) if card.get("litert") else None
    except (ValueError, OSError) as exc:
        print(f"error: cannot calibrate {model}: {exc}", file=sys.stderr)
        return 2
    chosen = entry["chosen_on"]
    print(f"face preprocessing on the {chosen['split']}: " + ", ".join(
        f"{name} {accuracy:.2%}" for name, accuracy in chosen["accuracy"].items()) + f"; chosen: {entry['name']}")
    calibration = card["calibration"]
    print(f"temperature {calibration['temperature']}, abstains below {calibration['abstain_below']} "
          f"({calibration['coverage_at_threshold']:.0%} of the validation faces answered, "
          f"{calibration['accuracy_at_threshold']:.1%} of them right)")
    if conversion:
        print(_described_conversion(conversion))
    print(f"recorded in {shipped.card_path(model).name}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from ferlib.models import pool_choice, shipping  # lazy: both import TensorFlow

    try:
        model = shipped.resolve_model(args.model, "model")
        precisions = tuple(p.strip() for p in args.precisions.split(",") if p.strip())
        entry = shipping.convert_for_litert(model, args.data, precisions)
    except (ValueError, OSError) as exc:
        print(f"error: cannot convert: {exc}", file=sys.stderr)
        return 2
    print(_described_conversion(entry))
    print(f"wrote {', '.join(e['file'] for e in entry['precisions'].values())} beside {Path(model).name} and "
          f"recorded them in {Path(model).with_suffix('.json').name}")
    if not (pool := shipped.read_card(model).get("pooled_with")):
        return 0
    try:  # the pool's precision, chosen again for the files just written (without --data: none)
        chosen = pool_choice.choose_pooled_precision(model, args.data)
    except (ValueError, OSError) as exc:
        print(f"error: converted, but cannot choose the pool's precision: {exc}", file=sys.stderr)
        return 2
    alone = "each network at its own card's precision" + (" (give --data to choose one for the pool)"
                                                           if args.data is None else "")
    print(f"pooled with {pool['model']}: " + (f"its networks at {chosen['default']} ({chosen['why']})" if chosen
                                              else alone))
    return 0
