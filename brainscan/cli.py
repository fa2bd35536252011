"""Command line: python -m brainscan {predict,convert,train,evaluate,external,pointing,familiarity,uncertainty,
sanity,volumes-eval,promote,export-litert,bench,quantize,compare,janitor} ... (`python -m brainscan --help` lists
them; a test checks this list)

Bad input never produces a traceback: each file that cannot be used gets one JSON line with an
error sentence, and the exit status says whether everything worked (0), a file was refused (1) or
the command itself was wrong (2: a bad flag, or a BrainScanError such as a missing model, dataset
or run folder, caught once in main()).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def cmd_predict(args: argparse.Namespace) -> int:
    """One line per volume (a NIfTI file, a DICOM series in a folder or zip) and per other file, in input order
    (brainscan.volume_check.predict_paths); with --slices one per slice as before."""
    from brainscan.check import load_checker
    from brainscan.volume_check import expand_paths, predict_paths

    if not expand_paths(args.paths):
        print("error: no input files found", file=sys.stderr)
        return 2
    checker = load_checker(args.model)
    failed = False
    for result in predict_paths(checker, args.paths, cam=args.cam, cam_method=args.cam_method, cam_out=args.cam_out,
                                slices=args.slices, volume_index=args.volume):
        failed |= "error" in result
        _emit(result)
    return 1 if failed else 0


def cmd_convert(args: argparse.Namespace) -> int:
    from brainscan.scans.convert import convert_paths
    from brainscan.volume_check import expand_paths

    results = convert_paths(expand_paths(args.paths), args.out, fmt=args.format, frame=args.frame)
    for r in results:
        _emit(r)
    return 1 if any("error" in r for r in results) else 0


def cmd_train(args: argparse.Namespace) -> int:
    from brainscan.runfolder import config_from_args
    from brainscan.training.run import run

    if not args.data and not args.recipe:
        print("error: train needs --data DIR or --recipe FILE", file=sys.stderr)
        return 2

    cfg = config_from_args(args)  # every TrainConfig field, by the same mapping the run manager writes
    metrics = run(cfg)
    return 0 if metrics else 1  # a stopped run saved no model: scripts must not go on to promote it


def cmd_evaluate(args: argparse.Namespace) -> int:
    from brainscan.evaluation.metrics import evaluate_folder

    result = evaluate_folder(args.data, args.model)
    if args.json:
        print(json.dumps(result))
    else:
        print(_summary(result))
    return 0


def _summary(r: dict) -> str:
    lines = [f"{r['data']} with model {r['model']}: {r['n_images']} images ({r['n_unreadable']} unreadable)"]
    if "accuracy" in r:
        lines.append(f"accuracy {r['accuracy']:.4f}  ECE {r['ece']:.4f}")
        for c, m in r["per_class"].items():
            lines.append(f"  {c:<11} precision {m['precision']:.3f} recall {m['recall']:.3f} f1 {m['f1']:.3f} "
                         f"n={m['support']}")
    tv = r.get("tumor_vs_notumor")
    if tv:
        lines.append(f"tumor vs no tumor: accuracy {tv['accuracy']:.4f} F1 {tv['f1']:.4f}"
                     + (f" ROC AUC {tv['roc_auc']:.4f}, sensitivity at 95% specificity "
                        f"{tv['at_95_specificity']['sensitivity']:.4f}" if "roc_auc" in tv else ""))
    return "\n".join(lines)


def _dedup_reference(args: argparse.Namespace) -> tuple[list[str], Path | None]:
    """The folders a yes/no image must not nearly duplicate (--dedup-against, plus every training source of
    --recipe), and the recipe's hash cache, so that the training images are not hashed again."""
    against = list(args.dedup_against or [])
    if not args.recipe:
        return against, None
    against += [str(s.path) for s in _recipe(args.recipe, args.data_root).sources]
    return against, Path(args.recipe).resolve().parent.parent / ".cache"


@functools.lru_cache(maxsize=2)
def _recipe(path: str, data_root: str | None):
    """The recipe, parsed and listed once per command (each of its sources' files is checked)."""
    from brainscan.scans.recipe import load_recipe

    return load_recipe(path, data_root)


def _outlined_source(model, args: argparse.Namespace) -> tuple | None:
    """(data root, the model's split files, CSV name, source folder) of the recipe's source with tumour masks
    (lgg-tcga-slices): the arguments of evaluate_outlined_slices after the model, read once per command."""
    recipe = _recipe(args.recipe, args.data_root)
    split = json.loads((Path(model.path) / "split.json").read_text()).get("files", {})
    for src in recipe.sources:
        if src.mask_column and src.csv:
            return str(recipe.data_root), split, src.csv, str(Path(src.path).relative_to(recipe.data_root))
    return None


def _outlined_classes(model, args: argparse.Namespace) -> tuple | None:
    """The arguments of evaluate_outlined_images after the model for the recipe's folder source whose tumour
    images have outlines kept beside it (brain-tumor-mri with brain-tumor-mri-masks): grouped by tumour class."""
    recipe = _recipe(args.recipe, args.data_root)
    split = json.loads((Path(model.path) / "split.json").read_text()).get("files", {})
    for src in recipe.sources:
        if src.masks and not src.csv:
            # Folder layout [<split>/]<class>/<file>: the class is the folder above the file.
            group = {rel: src.classes.get(Path(rel).parent.name, "unknown") for rel in src.masks}
            return (str(recipe.data_root), split, str(Path(src.path).relative_to(recipe.data_root)), src.masks,
                    group)
    return None


def cmd_pointing(args: argparse.Namespace) -> int:
    """Compare heatmap methods by the pointing game on one part of the split (validation, to choose one)."""
    from brainscan.cam.methods import get as cam_method
    from brainscan.evaluation.pointing import evaluate_outlined_slices
    from brainscan.runtime.inference import load_model

    model = load_model(args.model)
    source = _outlined_source(model, args)
    rows = []
    for method in args.methods.split(","):
        for fallback in (False, True) if cam_method(method).when_empty else (False,):
            out = evaluate_outlined_slices(model, *source, parts=(args.part,), cam_method=method,
                                           fallback=fallback) if source else {}
            for seq, pg in out.get("parts", {}).get(args.part, {}).items():
                rows.append({"method": method + (f" (else {cam_method(method).when_empty})" if fallback else ""),
                             "sequence": seq, **pg})
    if args.json:
        print(json.dumps({"part": args.part, "rows": rows}, indent=2))
        return 0
    print(f"pointing game on lgg-tcga outlined slices, part {args.part!r} (hit rate; brightest spot; random point)")
    for r in rows:
        print(f"{r['method']:<26} {r['sequence']:<6} n={r['n']:<4} {r['hit_rate']:.3f}  "
              f"{r['baseline_brightest_point']:.3f}  {r['baseline_random_point_in_head']:.3f}  "
              f"empty {r['empty_heatmap']:.3f}")
    return 0


def cmd_external(args: argparse.Namespace) -> int:
    from brainscan.evaluation.external import attach_to_model, evaluate_brats, evaluate_yes_no
    from brainscan.modelfolder import write_markdown
    from brainscan.runtime.inference import load_model

    model = load_model(args.model)
    result: dict = {}
    if args.brats:
        patients = [p for p in (args.brats_patients or "").split(",") if p]
        for key, turned in (("brats", False), ("brats_upside_down", True)):  # as stored, and turned front-up
            result[key] = evaluate_brats(args.brats, model, cam_method=args.cam_method,
                                         max_per_sequence=args.max_per_sequence, patients=patients or None,
                                         upside_down=turned)
    if args.yes_no:
        against, cache = _dedup_reference(args)
        result["yes_no"] = evaluate_yes_no(args.yes_no, model, against, cache_dir=cache)
    if args.recipe:
        source = _outlined_source(model, args)
        if source:
            from brainscan.evaluation.pointing import evaluate_outlined_slices

            result["outlined_slices"] = evaluate_outlined_slices(model, *source, cam_method=args.cam_method)
        by_class = _outlined_classes(model, args)
        if by_class:
            from brainscan.evaluation.pointing import evaluate_outlined_images

            result["outlined_classes"] = evaluate_outlined_images(model, *by_class, parts=("test_dedup",),
                                                                  cam_method=args.cam_method)
    attach_to_model(str(model.path), result)
    write_markdown(model.path)
    print(json.dumps(json.loads((model.path / "card.json").read_text())["external"], indent=2))
    return 0


def cmd_familiarity(args: argparse.Namespace) -> int:
    from brainscan.training.calibrate import refit_model_folder

    print(json.dumps(refit_model_folder(args.model, args.data), indent=2))
    return 0


def cmd_uncertainty(args: argparse.Namespace) -> int:
    from brainscan.evaluation.deferral import fit_and_measure, summary_lines

    command = "python -m brainscan " + " ".join(args.argv)
    against, cache = _dedup_reference(args)
    result = fit_and_measure(args.model, args.data, coverage=args.coverage, brats=args.brats, yes_no=args.yes_no,
                             dedup_against=against, cache_dir=cache, command=command)
    print("\n".join(summary_lines(result)))
    return 0


def cmd_sanity(args: argparse.Namespace) -> int:
    from brainscan.evaluation.sanity import run

    result = run(args.model, seed=args.seed, command="python -m brainscan " + " ".join(args.argv))
    for s in result["stages"]:
        per_case = " ".join(f"{v:+.2f}" for v in s["spearman"])
        print(f"{s['name']:<28} mean Spearman {s['mean_spearman']:+.3f}  {per_case}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from brainscan.modelfolder import write_markdown
    from brainscan.runs import promote

    dest = Path(args.dest)
    folder = promote(args.run, dest.parent, dest.name)
    write_markdown(folder)
    print(folder)
    return 0


def cmd_janitor(args: argparse.Namespace) -> int:
    from brainscan import hosting, janitor, modelfolder, runs

    storage = hosting.HOSTED_STORAGE  # hosted-mode limits unless a flag says otherwise, in either mode (README)
    age = args.max_age_hours * 3600 if args.max_age_hours is not None else storage.max_age_s
    total = args.max_total_mb if args.max_total_mb is not None else storage.max_total_mb
    share = args.visitor_mb if args.visitor_mb is not None else storage.visitor_mb
    report = janitor.sweep(runs.get_runs_dir(), age, total, visitor_mb=share).as_dict()
    report["models_recovered"] = modelfolder.recover_all(runs.get_models_dir())
    _emit(report)
    return 0


def cmd_export_litert(args: argparse.Namespace) -> int:
    from brainscan.training.export import add_lite_files

    if not add_lite_files(args.model):
        print(f"{args.model}: the network does not end in global pooling and one linear layer; "
              "it keeps running through Keras.", file=sys.stderr)
        return 1
    from brainscan.modelfolder import write_markdown

    write_markdown(args.model)
    print(f"Wrote model.tflite and head.npz into {args.model}")
    return 0


def cmd_volumes_eval(args: argparse.Namespace) -> int:
    from brainscan.evaluation.volumes import run, summary_lines

    result = run(args.model, args.data, write=not args.no_write, per_volume=args.per_volume,
                 log=lambda line: print(line, file=sys.stderr))
    print(json.dumps(result, indent=2, default=str) if args.json else "\n".join(summary_lines(result)))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from brainscan.bench import format_report, run_bench

    result = run_bench(model_path=args.model, repeats=args.repeats)
    print(json.dumps(result) if args.json else format_report(result))
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from brainscan.training.quantize import quantize_folder

    print(json.dumps(quantize_folder(args.model, args.out, args.data_root, args.samples), indent=2))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from brainscan.evaluation.compare import compare, write

    extra = None
    if args.bench:  # one process, both models, each against the same VGG19 baseline
        from brainscan.bench import run_bench

        extra = {role: {"speedup_vs_vgg19": run_bench(folder)["speedup_vs_vgg19"]}
                 for role, folder in (("old", args.old), ("new", args.new))}
    result = compare(args.old, args.new, args.recipe, args.data_root, extra)
    write(result, args.new, args.out)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    old, new = result["old"]["name"], result["new"]["name"]
    print(f"{'target':<78} {'goal':>7}  {old[:18]:>18}  {new[:18]:>18}")
    for r in result["rows"]:
        def cell(v, met):
            return "n/a" if v is None else f"{v:.3f}" + (" ok" if met else "   ")
        print(f"{r['label']:<78} {('>= ' if r['higher_is_better'] else '<= ') + format(r['goal'], 'g'):>7}  "
              f"{cell(r['old'], r['old_met']):>18}  {cell(r['new'], r['new_met']):>18}")
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: one line and status 2, no traceback
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from brainscan.cam.methods import CAM_METHODS, DEFAULT_CAM_METHOD
    from brainscan.config import DISTRIBUTE_CHOICES
    from brainscan.runfolder import add_train_arguments
    from brainscan.training.architectures import NAMES as ARCHITECTURES

    p = _Parser(prog="python -m brainscan", description="BrainScan: brain-MRI tumor check (research demo).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    # Options several commands share (argparse parents): one definition, one help text.
    model_opt = argparse.ArgumentParser(add_help=False)
    model_opt.add_argument("--model", help="model folder (default: $BRAINSCAN_MODEL, else models/default)")
    json_opt = argparse.ArgumentParser(add_help=False)
    json_opt.add_argument("--json", action="store_true", help="print JSON instead of a summary")
    dedup_opts = argparse.ArgumentParser(add_help=False)
    dedup_opts.add_argument("--yes-no", help="a yes/no folder (e.g. navoneel-yes-no)")
    dedup_opts.add_argument("--dedup-against", action="append",
                            help="drop yes/no images with a near-duplicate in this folder (repeatable)")
    dedup_opts.add_argument("--recipe", help="the recipe the model was trained with: drop yes/no images with a "
                                             "near-duplicate in any of its sources, reusing its hash cache (external: "
                                             "also the pointing game on its outlined test slices)")
    dedup_opts.add_argument("--data-root", help="with --recipe: where its sources are (default: the recipe's own)")
    cam_opt = argparse.ArgumentParser(add_help=False)
    cam_opt.add_argument("--cam-method", default=DEFAULT_CAM_METHOD, choices=CAM_METHODS,
                         help=f"the heatmap method (default {DEFAULT_CAM_METHOD}, as the app)")

    fa = sub.add_parser("familiarity", help="fit the pixel familiarity check of a model folder from its split")
    fa.add_argument("model")
    fa.add_argument("--data", required=True, help="the dataset folder the model was trained on")
    fa.set_defaults(func=cmd_familiarity)

    un = sub.add_parser("uncertainty", parents=[dedup_opts],
                        help="choose the 'needs a human' threshold on validation; coverage/accuracy curves on the "
                             "test split and external sets (writes uncertainty.json)")
    un.add_argument("model")
    un.add_argument("--data", required=True, help="the dataset folder the model was trained on (its split.json's root)")
    un.add_argument("--coverage", type=float, default=0.9, help="share of validation scans left answered (0.9)")
    un.add_argument("--brats", help="brats2013-slices folder (tumour vs tumour-free per sequence)")
    un.set_defaults(func=cmd_uncertainty)

    sa = sub.add_parser("sanity", help="heatmap sanity check: model randomisation (writes sanity.json/.npz)")
    sa.add_argument("model")
    sa.add_argument("--seed", type=int, default=0)
    sa.set_defaults(func=cmd_sanity)

    ex = sub.add_parser("export-litert", help="add model.tflite + head.npz to a model folder (TensorFlow-free runs)")
    ex.add_argument("model")
    ex.set_defaults(func=cmd_export_litert)

    pr = sub.add_parser("predict", parents=[model_opt, cam_opt],
                        help="classify scans and volumes (NIfTI, a folder or zip of a DICOM series); JSON Lines on "
                             "stdout")
    pr.add_argument("paths", nargs="+")
    pr.add_argument("--cam", action="store_true", help="add cam_peak [x, y] in original pixel coordinates (a volume: "
                                                       "on its peak slice, and cam_peak_ras_mm [x, y, z] in RAS+ mm)")
    pr.add_argument("--slices", action="store_true", help="one line per slice instead of one per volume (DICOM "
                                                          "files one each, as before; a NIfTI file one per slice)")
    pr.add_argument("--volume", type=int, default=None, metavar="N",
                    help="for a 4-D NIfTI file (DWI, fMRI): check volume N (from 0)")
    pr.add_argument("--cam-out", help="also write heatmap overlays (PNG) to this folder")
    pr.set_defaults(func=cmd_predict)

    cv = sub.add_parser("convert", help="DICOM (or any scan) to PNG/JPEG without identifiers")
    cv.add_argument("paths", nargs="+")
    cv.add_argument("--out", required=True)
    cv.add_argument("--format", default="png", choices=("png", "jpg"))
    cv.add_argument("--frame", type=int, default=None)
    cv.set_defaults(func=cmd_convert)

    tr = sub.add_parser("train", help="train a model on a dataset folder, or on several sources (--recipe)")
    add_train_arguments(tr, {  # one option per TrainConfig field (brainscan.runfolder); here their help and order
        "data": {"help": "dataset folder (with --recipe: the data root, default the recipe's own)"},
        "recipe": {"help": "a recipe TOML listing several sources (recipes/v3.toml)"},
        "holdout_institution": {"help": "with --recipe: an lgg-tcga institution never trained on (e.g. HT)"},
        "steps_per_epoch": {"help": "with --recipe: balanced batches per epoch (0 = training images / batch size)"},
        "guide_cams": {"metavar": "W", "help": "with --recipe: weight of a loss that pulls each tumour class's CAM "
                                               "onto the tumour outlines of the training data (0 = off)"},
        "train_sequences": {"metavar": "SEQ,...", "help": "with --recipe: train and validate on these sequences only "
                                                          "(e.g. t1c); the test parts keep every sequence"},
        "init_from": {"metavar": "MODEL", "help": "start from this model folder's weights (same architecture and "
                                                  "classes; the input size may differ: progressive resizing)"},
        "out": {"required": True, "help": "run folder to create"},
        "arch": {"choices": ARCHITECTURES},
        "epochs": {},
        "img_size": {},
        "weights": {"help": "imagenet | none | PATH to a local weights file"},
        "batch_size": {},
        "learning_rate": {},
        "augment": {},
        "lesions": {"metavar": "P", "help": "paint synthetic lesions into this share of tumor-free training images "
                                            "(0 = off)"},
        "randconv": {"metavar": "P", "help": "filter training images through a random convolution with this chance "
                                             "(0 = off)"},
        "vflip": {"metavar": "P", "help": "show each training image upside down with this chance, so that a scan "
                                          "stored posterior-up reads like one stored anterior-up (0 = off)"},
        "contrast": {"metavar": "P", "help": "remap each training image's intensities through a random "
                                             "non-monotone curve with this chance, so that contrast (sequence) is "
                                             "no cue for the class (0 = off)"},
        "stripped": {"metavar": "P", "help": "show each training image skull-stripped and re-cropped with this "
                                             "chance (0 = off)"},
        "extra_train": {"metavar": "DIR", "help": "a class-folder set (e.g. glioma/ and notumor/ from another "
                                                  "hospital) added to the training part only; images "
                                                  "near-duplicating a validation or test image are dropped"},
        "seed": {},
        "patience": {},
        "max_images": {"help": "cap the training images (quick demos)"},
        "time_limit_s": {"metavar": "SECONDS", "help": "stop training after this many seconds and keep the best "
                                                       "epoch so far (0: no limit)"},
        "name": {},
        "val_fraction": {"metavar": "F", "help": "share of the images (patient groups) kept for validation (0.15)"},
        "test_fraction": {"metavar": "F", "help": "share of the images (patient groups) kept for the test (0.15)"},
        "distribute": {"choices": DISTRIBUTE_CHOICES, "metavar": "mirrored|multi-worker",
                       "help": "mirrored: train on every local GPU at once (tf.distribute.MirroredStrategy); "
                               "multi-worker is refused: Keras 3 does not train with MultiWorkerMirroredStrategy "
                               "(keras-team/keras#20585)"},
        "cpu_replicas": {"metavar": "N", "help": "with --distribute mirrored and no GPU: split the CPU into N replicas "
                                                 "(exercises the mirrored path; no speed-up)"},
    })
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", parents=[model_opt, json_opt], help="metrics of a model on a labelled folder")
    ev.add_argument("data")
    ev.set_defaults(func=cmd_evaluate)

    ex = sub.add_parser("external", parents=[model_opt, dedup_opts, cam_opt],
                        help="evaluate on other sources (BRATS slices, a yes/no set); stored in the card")
    ex.add_argument("--brats")
    ex.add_argument("--brats-patients", metavar="P1,P2",
                    help="count only these patients (those a model trained with --extra-train did not see)")
    ex.add_argument("--max-per-sequence", type=int, default=0)
    ex.set_defaults(func=cmd_external)

    pg = sub.add_parser("pointing", parents=[json_opt],
                        help="compare heatmap methods by the pointing game on the recipe's outlined slices of one "
                             "split part (validation: where a method may be chosen)")
    pg.add_argument("model")
    pg.add_argument("--recipe", required=True, help="the recipe the model was trained with (recipes/v3.toml)")
    pg.add_argument("--data-root", help="where its sources are (default: the recipe's own)")
    pg.add_argument("--part", default="val", choices=("val", "test", "institution_holdout"))
    pg.add_argument("--methods", default=",".join(CAM_METHODS), help="comma-separated (default: all)")
    pg.set_defaults(func=cmd_pointing)

    ve = sub.add_parser("volumes-eval", parents=[json_opt],
                        help="choose the volume rule on validation patients and measure it on held-out ones (writes "
                             "volume.json into the model folder)")
    ve.add_argument("model", nargs="?", default="models/default")
    ve.add_argument("--data", required=True, help="the shared data folder (lgg-tcga-slices, ms-ljubljana-slices, "
                                                  "ms-ljubljana-volumes)")
    ve.add_argument("--no-write", action="store_true", help="measure only; leave volume.json as it is")
    ve.add_argument("--per-volume", metavar="FILE", help="also write every volume's per-slice probabilities (JSON)")
    ve.set_defaults(func=cmd_volumes_eval)

    po = sub.add_parser("promote", help="copy a finished run's model into models/ atomically")
    po.add_argument("run")
    po.add_argument("dest", nargs="?", default="models/default")
    po.set_defaults(func=cmd_promote)

    ja = sub.add_parser("janitor", help="remove leftovers, old uploads and runs (hosted-mode limits by default)")
    ja.add_argument("--max-age-hours", type=float, default=None)
    ja.add_argument("--max-total-mb", type=float, default=None)
    ja.add_argument("--visitor-mb", type=float, default=None,
                    help="when over --max-total-mb, visitors above this share lose their oldest files first")
    ja.set_defaults(func=cmd_janitor)

    be = sub.add_parser("bench", parents=[json_opt, model_opt],
                        help="time one scan check against VGG19 predict, and a volume's slices batched against slice "
                             "by slice")
    be.add_argument("--repeats", type=int, default=7)
    be.set_defaults(func=cmd_bench)

    qz = sub.add_parser("quantize", help="copy a model folder with a full-integer (int8) LiteRT model, calibrated on "
                                         "its own training images")
    qz.add_argument("model")
    qz.add_argument("--out", required=True, help="the new model folder")
    qz.add_argument("--data-root", default="../shared/data", help="where the model's split.json files are")
    qz.add_argument("--samples", type=int, default=300, help="representative training images")
    qz.set_defaults(func=cmd_quantize)

    cp = sub.add_parser("compare", parents=[json_opt],
                        help="two model folders side by side on the table of targets (writes comparison.json into "
                             "the second)")
    cp.add_argument("old")
    cp.add_argument("new")
    cp.add_argument("--recipe", required=True, help="the recipe whose items label the split files (recipes/v4.toml)")
    cp.add_argument("--data-root", default="../shared/data")
    cp.add_argument("--bench", action="store_true", help="also time both models against VGG19 (imports TensorFlow)")
    cp.add_argument("--out", help="also write the comparison here")
    cp.set_defaults(func=cmd_compare)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from brainscan.errors import BrainScanError
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by the commands that write a model folder

    try:
        return int(args.func(args) or 0)
    except (BrainScanError, FileNotFoundError) as err:  # the command cannot run as asked: a usage error
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
