"""``gan-lightning`` (also ``python -m gan_lightning``): train | sample | evaluate | translate | project | upscale |
interpolate | sweep | compare | list | config.

User errors (bad config, missing files) print one ``error:`` line to stderr and exit non-zero
(2 for configuration problems, 1 otherwise); tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import os
import sys
import typing
import warnings
from pathlib import Path
from typing import Any

from gan_lightning.errors import ConfigError, GanLightningError


def _cmd_train(args: argparse.Namespace) -> int:
    from gan_lightning import config as config_lib

    overrides = list(args.overrides)
    from gan_lightning.sweeps import agent_trial_overrides

    overrides += agent_trial_overrides(args.experiment, overrides)  # a W&B agent's trial: its own dir and name
    if args.resume:
        overrides.append("run.resume=last")
    if args.quiet:
        overrides.append("run.quiet=true")
    config = config_lib.load_experiment(args.experiment, overrides)
    from gan_lightning.train import prepare, silence_lightning, train

    if args.dry_run:
        silence_lightning()  # the resolved config alone on stdout
        prepare(config, dry_run=True)  # data, model, optimizers, callbacks, trainer: what would fail, fails here
        print(config_lib.to_yaml(config), end="")
        return 0
    run_dir = train(config)
    from gan_lightning.rundir import final_report

    print(final_report(Path(run_dir)))
    return 0


def _chosen_label(model: Any, args: argparse.Namespace) -> Any:
    """What ``--label`` (a class) or ``--attributes`` (the attributes present, for multi-hot models) asks for: an int,
    a multi-hot vector, or None (class by row)."""
    import torch

    if args.label is None and args.attributes is None:
        return None
    option = "--label" if args.label is not None else "--attributes"
    if not model.conditional:
        raise GanLightningError(f"{option}: model {model.registry_name} is not conditional")
    if args.label is not None and args.attributes is not None:
        raise GanLightningError("--label and --attributes: give one of them")
    names = model.label_names or []
    if args.label is not None:
        if model.multi_label:
            raise GanLightningError(f"--label: this model is conditioned on several attributes; choose them with "
                                    f"--attributes NAME,NAME (of {', '.join(names)})")
        if not 0 <= args.label < model.num_classes:
            raise GanLightningError(f"--label must be in [0, {model.num_classes - 1}], got {args.label}")
        return args.label
    if not model.multi_label:
        raise GanLightningError(f"--attributes: this model is conditioned on one label with {model.num_classes} "
                                f"classes ({', '.join(names) or 'unnamed'}); choose one with --label N")
    chosen = [name.strip() for name in args.attributes.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise GanLightningError(f"--attributes: unknown attribute {unknown[0]!r}; the model knows {', '.join(names)}")
    return torch.tensor([float(name in chosen) for name in names])


def _cmd_sample(args: argparse.Namespace) -> int:
    from gan_lightning.callbacks.samples import check_output_path, check_sample_count, mode_centres, save_samples
    from gan_lightning.loading import load_model
    from gan_lightning.models.latent import LatentGAN

    for option, value in (("--n", args.n), ("--nrow", args.nrow)):
        if value < 1:
            raise GanLightningError(f"{option} must be >= 1, got {value}")
    check_output_path(args.out, {args.checkpoint: "the checkpoint"})
    model = load_model(args.checkpoint)
    if not isinstance(model, LatentGAN):
        raise GanLightningError(f"{model.registry_name} translates images instead of sampling them: use "
                                f"{model.translate_usage}")
    label = _chosen_label(model, args)
    sampling = _sampling_options(model, args)
    if args.style_mix is not None:
        return _sample_style_mix(model, args, label, sampling)
    row_length = 4 if args.arithmetic else args.nrow
    if args.interpolate and not args.arithmetic and args.nrow < 2:
        raise GanLightningError(f"--interpolate needs --nrow >= 2 (steps per row), got {args.nrow}")
    count = 4 if args.arithmetic else max(1, args.n // args.nrow) * args.nrow if args.interpolate else args.n
    check_sample_count(count, model.sample_shape, args.out, row_length)
    samples = _draw_samples(model, args, label, count, row_length, sampling)
    save_samples(samples, args.out, nrow=row_length, centres=mode_centres(_stored_datamodule(model)))
    print(f"wrote {len(samples)} samples to {args.out}")
    return 0


SAMPLE_BATCH = 256  # samples generated at once by `sample`: memory is the output plus one batch's activations


def _draw_samples(model, args: argparse.Namespace, label: Any, count: int, row_length: int,
                  sampling: dict[str, Any]):
    """``count`` samples, generated about SAMPLE_BATCH at a time from latents drawn with --seed (--interpolate: rows
    between random latents, through the model's ``interpolate``; --arithmetic's latents; or the model's prior: up to
    SAMPLE_BATCH samples these are the model's ``draw_samples``); one line for non-finite samples."""
    import torch

    from gan_lightning.models.base import seeded_randomness

    generator = torch.Generator().manual_seed(args.seed)
    labels = model.labels_for(count, label, row_length)
    if args.interpolate and not args.arithmetic:
        rows = count // row_length
        starts, ends = model.sample_latent(rows, generator), model.sample_latent(rows, generator)
        chunk = max(1, SAMPLE_BATCH // row_length) * row_length  # whole rows

        def render(start: int, size: int):
            first, last = start // row_length, (start + size) // row_length
            return model.interpolate(starts[first:last], ends[first:last], row_length,
                                     None if labels is None else labels[start : start + size], **sampling)
    else:
        z = _arithmetic_latents(model, args) if args.arithmetic else None
        chunk = SAMPLE_BATCH

        def render(start: int, size: int):
            latents = model.sample_latent(size, generator) if z is None else z[start : start + size]
            return model.generate(latents, None if labels is None else labels[start : start + size], **sampling)
    samples = None
    with seeded_randomness(args.seed, model.device):  # --noise random: noise maps drawn from --seed too
        for start in range(0, count, chunk):
            size = min(chunk, count - start)
            batch = _finite(render(start, size).cpu(), args.checkpoint)
            if samples is None:
                samples = torch.empty((count, *batch.shape[1:]), dtype=batch.dtype)
            samples[start : start + size] = batch
    return samples


def _finite(samples, checkpoint: str):
    import torch

    if not bool(torch.isfinite(samples).all()):
        raise GanLightningError(f"{checkpoint}: the generator produced non-finite samples (NaN/inf)")
    return samples


def _sampling_options(model, args: argparse.Namespace) -> dict[str, Any]:
    """--truncation, --truncation-cutoff and --noise as ``generate``'s keywords, checked by the model (one line for
    a model without a tracked average or noise inputs)."""
    if args.truncation_cutoff is not None and args.truncation is None:
        raise GanLightningError("--truncation-cutoff needs --truncation PSI (the cut-off says which layers it pulls)")
    options = {"truncation": 1.0 if args.truncation is None else args.truncation,
               "truncation_cutoff": args.truncation_cutoff, "noise": args.noise}
    model.check_sampling_options(**options)
    return options


def _sample_style_mix(model, args: argparse.Namespace, label: Any, sampling: dict[str, Any]) -> int:
    """--style-mix ROWS COLS: the paper's style-mixing figure, sources drawn with --seed (rows first)."""
    import torch

    from gan_lightning.callbacks.samples import check_sample_count, save_samples
    from gan_lightning.models.base import seeded_randomness

    rows, cols = args.style_mix
    if rows < 1 or cols < 1:
        raise GanLightningError(f"--style-mix ROWS COLS: both must be >= 1, got {rows} {cols}")
    if args.interpolate or args.arithmetic:
        raise GanLightningError("--style-mix draws its own grid: not with --interpolate or --arithmetic")
    if not hasattr(model, "style_mix"):
        raise GanLightningError(f"--style-mix: model {model.registry_name} has no per-layer styles to mix (a "
                                "mapping network's: stylegan2, cstylegan2)")
    layers = model.mixing_layers(args.mix_layers)
    check_sample_count((rows + 1) * (cols + 1), model.sample_shape, args.out, cols + 1)
    generator = torch.Generator().manual_seed(args.seed)
    row_z, col_z = model.sample_latent(rows, generator), model.sample_latent(cols, generator)
    if sampling["noise"] is None:
        sampling = {**sampling, "noise": "const"}  # a source looks the same in its row or column and its cells
    with seeded_randomness(args.seed, model.device):  # --noise random: noise maps drawn from --seed too
        grid = _finite(model.style_mix(row_z, col_z, layers, model.labels_for(rows, label, 1),
                                       model.labels_for(cols, label, 1), **sampling).cpu(), args.checkpoint)
    save_samples(grid, args.out, nrow=cols + 1)
    print(f"wrote a {rows} x {cols} style-mixing grid (ws {_ranges(layers)} from the row sources) to {args.out}")
    return 0


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5"."""
    runs: list[list[int]] = []
    for index in indices:
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return ",".join(f"{run[0]}-{run[-1]}" if len(run) > 1 else f"{run[0]}" for run in runs)


def _stored_datamodule(model):
    """The datamodule of the checkpoint's stored experiment (for what it knows without loading data, such as the
    mode centres of the 2-D mixtures), or None."""
    from omegaconf import OmegaConf

    from gan_lightning import config as config_lib
    from gan_lightning.train import build_datamodule

    experiment = model.hparams.get("experiment")
    try:
        return build_datamodule(config_lib.validate(OmegaConf.create(experiment))) if experiment else None
    except GanLightningError:  # an experiment this version cannot validate: plot without centres
        return None


def _arithmetic_latents(model, args: argparse.Namespace):
    """--arithmetic A,B,C: one row G(z_A), G(z_B), G(z_C), G(z_A + z_B - z_C), z_S drawn from seed S."""
    import torch

    from gan_lightning.latent import latent_arithmetic

    try:
        seeds = [int(part) for part in args.arithmetic.split(",")]
    except ValueError:
        seeds = []
    if len(seeds) != 3:
        raise GanLightningError(f"--arithmetic: expected three seeds A,B,C, got {args.arithmetic!r}")
    z_a, z_b, z_c = (model.sample_latent(1, torch.Generator().manual_seed(s))[0] for s in seeds)
    return torch.stack([z_a, z_b, z_c, latent_arithmetic(z_a, z_b, z_c)])


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    import torch
    from omegaconf import OmegaConf

    from gan_lightning import config as config_lib
    from gan_lightning.evaluation import evaluate
    from gan_lightning.files import atomic_write_text
    from gan_lightning.loading import load_model
    from gan_lightning.metrics.stats import fewest_samples, parse_metrics
    from gan_lightning.outputs import check_not_read
    from gan_lightning.train import build_datamodule

    refused = [item for item in args.overrides if item.split("=", 1)[0].strip().startswith("model.")]
    if refused:  # the checkpoint's weights are the model: its keys are what they were trained with
        raise ConfigError(f"{refused[0].split('=', 1)[0]}: evaluate scores the model as trained and cannot change "
                          "model.* keys; accepted overrides: data.*, callbacks.metrics.*, trainer.*")
    model = load_model(args.checkpoint)
    experiment = model.hparams.get("experiment")
    if not experiment:
        raise GanLightningError(f"{args.checkpoint} holds no experiment config: cannot tell which data to compare to")
    experiment = OmegaConf.merge(OmegaConf.create(experiment), config_lib.parse_overrides(args.overrides))
    experiment.run.resume = None
    config = config_lib.validate(experiment)
    settings = config.callbacks.metrics
    for key, value in (("metrics", args.metrics), ("n_samples", args.n), ("extractor", args.extractor),
                       ("inception_weights", args.inception_weights), ("cache_dir", args.cache_dir),
                       ("n_real", args.n_real), ("batch_size", args.batch_size), ("protocol", args.protocol),
                       ("vgg_weights", args.vgg_weights), ("lpips_weights", args.lpips_weights)):
        if value is not None:
            settings[key] = value
    if args.n is not None:
        need, why = fewest_samples(settings.metrics)
        if args.n < need:
            raise GanLightningError(f"--n must be >= {need}{f' ({why})' if why else ''}, got {args.n}")
    config_lib.check_metrics_settings(settings)
    checkpoint = Path(args.checkpoint)
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    step = int(model.batches_seen)
    protocol = "" if settings.protocol == "antialias" else f"_{settings.protocol}"  # the default keeps its old name
    report = run_dir / f"evaluation_step{step:07d}_{settings.extractor}{protocol}.json"
    reads = {checkpoint: "the checkpoint",
             **({settings.inception_weights: "the Inception weights"} if settings.inception_weights else {}),
             **({settings.vgg_weights: "the VGG16 weights"} if settings.vgg_weights else {}),
             **({settings.lpips_weights: "the LPIPS weights"} if settings.lpips_weights else {})}
    check_not_read([report], "the report", reads, "rename the checkpoint (the report goes beside its run)")
    superres = hasattr(model, "evaluate_test_sets")
    given = [flag for flag, value in (("--vgg-weights", args.vgg_weights), ("--lpips-weights", args.lpips_weights))
             if value]
    requested = parse_metrics(settings.metrics)
    if given and not superres and "ppl" not in requested:  # refused rather than silently unused
        raise GanLightningError(f"{given[0]}: none of the requested metrics ({','.join(requested)}) uses it; for a "
                                "latent model only ppl measures with VGG16/LPIPS (add it with --metrics)")
    lpips = _superres_lpips(settings, args) if superres else None  # both files checked before any work
    datamodule = build_datamodule(config)
    image_metrics = not superres or args.metrics is not None
    if image_metrics:
        scored = model.eval_sample_count(settings.n_samples, datamodule)  # a translation model: its test set
        need, why = fewest_samples(settings.metrics)
        if scored < need:
            raise GanLightningError(f"--metrics {settings.metrics}: {model.registry_name} is scored on its {scored} "
                                    f"evaluation images, fewer than {need} ({why}); add images to its test set or "
                                    "leave that metric out")
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    scores = {"checkpoint": str(args.checkpoint), "step": step}
    if superres:  # PSNR/SSIM (LPIPS) per test set next to bicubic; FID/KID only when --metrics asks
        scores.update(model.evaluate_test_sets(datamodule, lpips.to(model.device) if lpips is not None else None))
    if image_metrics:
        scores.update(evaluate(model, datamodule, settings))
    text = json.dumps(scores)
    print(text)
    try:
        atomic_write_text(report, text + "\n")
    except OSError as error:  # a read-only checkpoint folder: the scores are on stdout all the same
        print(f"note: could not write {report} ({error.strerror})", file=sys.stderr)
    return 0


def _superres_lpips(settings, args: argparse.Namespace):
    """LPIPS (v0.1, vgg) for a super-resolution evaluation when both weight files are given (read now, so a wrong one
    is one line before any work); a note saying how to get it when neither is; one of them alone is an error."""
    from gan_lightning.metrics.perceptual import lpips_vgg

    if settings.vgg_weights and settings.lpips_weights:
        return lpips_vgg(settings.vgg_weights, settings.lpips_weights)
    if settings.lpips_weights or args.vgg_weights:
        given, missing = (("--lpips-weights", "--vgg-weights (torchvision's vgg16-397923af.pth)") if
                          settings.lpips_weights else
                          ("--vgg-weights", "--lpips-weights (the lpips package's weights/v0.1/vgg.pth)"))
        raise GanLightningError(f"{given}: LPIPS of a super-resolution checkpoint needs both weight files; give "
                                f"{missing} too")
    print("note: no LPIPS; to report it give --vgg-weights vgg16-397923af.pth (torchvision's VGG16) and "
          "--lpips-weights vgg.pth (weights/v0.1/vgg.pth of the lpips package)", file=sys.stderr)
    return None


def _cmd_translate(args: argparse.Namespace) -> int:
    from gan_lightning.translation_io import translate_folder

    count, direction, out = translate_folder(args.checkpoint, args.input, args.out, args.direction, args.batch_size)
    print(f"wrote {count} translated images ({direction}) to {out}")
    return 0


def _cmd_project(args: argparse.Namespace) -> int:
    from gan_lightning.projection import ProjectionSettings, project_images

    count, space, out = project_images(args.checkpoint, args.input, args.out, ProjectionSettings(steps=args.steps),
                                       args.w_plus, args.vgg_weights, args.seed, args.batch_size,
                                       perceptual=not args.pixel_only, lpips_weights=args.lpips_weights)
    print(f"projected {count} images into {space}: {out}/*_projected.png, {out}/latents.pt, {out}/progress.png")
    return 0


def _cmd_upscale(args: argparse.Namespace) -> int:
    from gan_lightning.superres_io import upscale_images

    count, scale, out = upscale_images(args.checkpoint, args.input, args.out, args.tile, args.overlap)
    print(f"wrote {count} images upscaled x{scale} to {out}")
    return 0


def _cmd_interpolate(args: argparse.Namespace) -> int:
    from gan_lightning.superres_io import interpolate_checkpoints

    architecture = interpolate_checkpoints(args.checkpoint_a, args.checkpoint_b, args.alpha, args.out)
    print(f"wrote {args.out}: generator ({architecture}) = {1 - args.alpha:g} x A + {args.alpha:g} x B")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from gan_lightning import sweeps

    sweep = sweeps.load_sweep(args.file)  # everything checked before a trial starts
    if args.count is not None and args.count < 1:
        raise GanLightningError(f"--count must be >= 1, got {args.count}")
    if args.dry_run:
        out = Path(args.out or Path("runs") / "sweeps" / sweep.path.stem) if args.local else None
        for line in sweeps.dry_run(sweep, args.count, args.seed, list(args.overrides), out, args.jobs):
            print(line)
        return 0
    if not args.local:
        sweep_id = sweeps.run_online(sweep, args.count, args.project, args.entity)
        print(f"sweep {sweep_id} done")
        return 0
    out = Path(args.out or Path("runs") / "sweeps" / sweep.path.stem)
    records = sweeps.run_local(sweep, out, args.count, args.jobs, args.seed, list(args.overrides))
    print(sweeps.results_table(sweep, records, out / "trials.csv"))
    print(f"{len(records)} trials in {out}; table: {out / 'trials.csv'}")
    return 0  # run_local raised if any trial failed


def _cmd_compare(args: argparse.Namespace) -> int:
    from gan_lightning.compare import compare

    print(compare(args.run_dirs, args.out, args.rank_by))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    import textwrap

    from gan_lightning import registry
    from gan_lightning.config import experiment_dirs, experiment_sources, experiment_summary

    sources = experiment_sources()
    by_family: dict[str, list[tuple[str, str, str]]] = {}
    for name, path in sources.items():
        model, description = experiment_summary(path)
        try:
            family = registry.get_model_class(model).family
        except ConfigError:  # no model.name, or one that is not registered: train would say which
            family = "experiments whose model.name is not a registered model"
        by_family.setdefault(family, []).append((name, str(model), description))
    print("experiments (gan-lightning train NAME; gan-lightning config NAME for their keys), by family:")
    width = max(map(len, sources), default=0)
    for family in sorted(by_family):
        print(f"\n{family}")
        for name, model, description in by_family[family]:
            print(textwrap.fill(f"{description} [{model}]", width=118, initial_indent=f"  {name:<{width}}  ",
                                subsequent_indent=" " * (width + 4), break_on_hyphens=False))  # "mode-collapse" whole
    print()
    print("models:      " + ", ".join(registry.model_names()))
    print("datamodules: " + ", ".join(registry.datamodule_names()))
    print("experiment folders (first match wins):")
    for folder, origin in experiment_dirs():
        names = [name for name, path in sources.items() if path.parent == folder]
        print(f"  {folder} ({origin}): {', '.join(names) if names else 'none'}")
        sweep_files = sorted(p.stem for p in (folder / "sweeps").glob("*.yaml"))
        if sweep_files:
            print(f"    sweeps: {', '.join(sweep_files)}")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from gan_lightning import config as config_lib
    from gan_lightning.config_help import describe, format_help

    config = config_lib.load_experiment(args.experiment, list(args.overrides))
    print(f"# {args.experiment}{' ' + ' '.join(args.overrides) if args.overrides else ''}: every key as resolved, "
          "its meaning and [what it accepts]")
    print(format_help(describe(config)), end="")
    return 0


class UsageError(ConfigError):
    """Bad command-line arguments: one ``error:`` line naming the command (exit 2, as argparse's own)."""


class _Parser(argparse.ArgumentParser):
    """argparse's parser with its errors as one :class:`UsageError` line instead of a usage block (``--help`` still
    prints the usage)."""

    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gan-lightning", description="GAN experiments on PyTorch Lightning.",
                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_examples(
                         "gan-lightning list", "gan-lightning train dcgan_digits",
                         "gan-lightning sample runs/dcgan_digits/checkpoints/last.ckpt --out grid.png",
                         "gan-lightning COMMAND --help"))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, *examples: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, description=summary, epilog=_examples(*examples),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)

    train = command("train", "train an experiment (a name under experiments/ or a YAML path)",
                    "gan-lightning train dcgan_digits",
                    "gan-lightning train dcgan_mnist model.lr_g=1e-4 trainer.max_steps=500 run.name=lr1e-4",
                    "gan-lightning train my_experiment.yaml --dry-run")
    train.add_argument("experiment", help="an experiment name (gan-lightning list) or a YAML file")
    train.add_argument("overrides", nargs="*", help="omegaconf dotlist, e.g. model.lr_g=1e-4 trainer.max_steps=500 "
                       "(every key: gan-lightning config EXPERIMENT)")
    train.add_argument("--dry-run", action="store_true", help="build the data, model, optimizers and trainer, print "
                       "the resolved config, then exit: nothing is trained or written")
    train.add_argument("--resume", action="store_true", help="continue run.dir from checkpoints/last.ckpt")
    train.add_argument("--quiet", action="store_true", help="no progress (bar or lines) nor model summary (same as "
                       "run.quiet=true); run.progress=lines for plain progress lines on a terminal too")
    train.set_defaults(handler=_cmd_train)

    sample = command("sample", "draw samples from a latent GAN's checkpoint",
                     "gan-lightning sample runs/dcgan_digits/checkpoints/last.ckpt --n 64 --out grid.png",
                     "gan-lightning sample runs/cgan_mnist/checkpoints/last.ckpt --label 7 --interpolate --out 7s.png")
    sample.add_argument("checkpoint", help="a checkpoint of a latent GAN (run.dir/checkpoints/last.ckpt)")
    sample.add_argument("--n", type=int, default=64, help="samples to draw (default 64)")
    sample.add_argument("--out", required=True, help="a .png grid, or .pt for the raw samples in data space")
    sample.add_argument("--seed", type=int, default=0, help="seed of the latents (the same seed, the same samples)")
    sample.add_argument("--label", type=int, default=None, help="class to draw (conditional models; one binary "
                        "attribute: 1 = present)")
    sample.add_argument("--attributes", default=None, metavar="NAME,NAME",
                        help="models conditioned on several attributes: the ones present (the others absent; "
                        "\"\" = none)")
    sample.add_argument("--nrow", type=int, default=8, help="images per grid row")
    sample.add_argument("--interpolate", action="store_true",
                        help="rows of --nrow samples interpolating between two random latents (slerp in Z; "
                        "stylegan2: linear in W)")
    sample.add_argument("--arithmetic", default=None, metavar="A,B,C",
                        help="latent arithmetic: G(z_A), G(z_B), G(z_C), G(z_A + z_B - z_C), z_S from seed S")
    sample.add_argument("--truncation", type=float, default=None, metavar="PSI",
                        help="truncation trick: w = w_avg + PSI * (w - w_avg) (models with a mapping network)")
    sample.add_argument("--truncation-cutoff", type=int, default=None, metavar="N",
                        help="truncate only the first N per-layer ws (the coarse styles), as the reference")
    sample.add_argument("--noise", choices=["const", "random"], default=None,
                        help="noise inputs: const = fixed per-layer maps (a latent always gives the same image), "
                        "random = fresh each call (default; --style-mix: const)")
    sample.add_argument("--style-mix", type=int, nargs=2, default=None, metavar=("ROWS", "COLS"),
                        help="style-mixing figure: row sources' styles (--mix-layers) over column sources")
    sample.add_argument("--mix-layers", default="coarse", metavar="SPEC",
                        help="--style-mix: the row sources' layers: coarse, middle, fine, ws indices A-B, or a "
                        "comma list (default coarse)")
    sample.set_defaults(handler=_cmd_sample)

    evaluate = command("evaluate", "FID/IS/KID (and more) of a checkpoint, printed as one JSON object",
                       "gan-lightning evaluate runs/dcgan_digits/checkpoints/last.ckpt --metrics fid,kid --n 5000",
                       "gan-lightning evaluate runs/dcgan_mnist/checkpoints/last.ckpt data.root=../shared/data")
    evaluate.add_argument("checkpoint", help="a checkpoint (its stored experiment says which data is real)")
    evaluate.add_argument("overrides", nargs="*", help="dotlist for the stored experiment, e.g. data.root=DIR")
    # defaults: the checkpoint's stored experiment (callbacks.metrics.*)
    evaluate.add_argument("--metrics", default=None,
                          help="comma-separated: fid,is,kid,precision,recall,density,coverage,intra_fid,cas,ppl "
                               "(default: callbacks.metrics.metrics; ppl: models with a mapping network)")
    evaluate.add_argument("--n", type=int, default=None,
                          help="generated samples (default: callbacks.metrics.n_samples)")
    evaluate.add_argument("--extractor", default=None, help="mnist (offline) or inception (default: "
                          "callbacks.metrics.extractor)")
    evaluate.add_argument("--inception-weights", default=None, help="pt_inception-2015-12-05 weights file")
    evaluate.add_argument("--cache-dir", default=None, help="where real statistics are cached")
    evaluate.add_argument("--n-real", type=int, default=None, help="real samples for the statistics")
    evaluate.add_argument("--batch-size", type=int, default=None,
                          help="samples per extractor forward (default: callbacks.metrics.batch_size)")
    evaluate.add_argument("--vgg-weights", default=None, metavar="FILE",
                          help="torchvision's vgg16 weights (vgg16-397923af.pth) for LPIPS: super-resolution "
                          "checkpoints (with --lpips-weights) and ppl (default: callbacks.metrics.vgg_weights, else "
                          "for one-channel models the MNIST net's)")
    evaluate.add_argument("--lpips-weights", default=None, metavar="FILE",
                          help="LPIPS's learned weights (the lpips package's weights/v0.1/vgg.pth): super-resolution "
                          "checkpoints report LPIPS per test set; ppl uses learned LPIPS (default: "
                          "callbacks.metrics.lpips_weights)")
    evaluate.add_argument("--protocol", default=None, help="resize before the extractor: antialias, tf (as "
                          "torch-fidelity/torchmetrics) or clean (as clean-fid) (default: callbacks.metrics.protocol)")
    evaluate.set_defaults(handler=_cmd_evaluate)

    translate = command("translate", "translate a folder of images with a translation checkpoint",
                        "gan-lightning translate runs/cyclegan_horse2zebra/checkpoints/last.ckpt --input horses/ "
                        "--out zebras/",
                        "gan-lightning translate CKPT --input zebras/ --direction BtoA --out horses/")
    translate.add_argument("checkpoint", help="a cyclegan or pix2pix checkpoint")
    translate.add_argument("--input", required=True, help="folder of jpg/png images of the source domain")
    translate.add_argument("--direction", choices=["AtoB", "BtoA"], default=None,
                           help="cyclegan: either (default AtoB); pix2pix: the one it learned (the default)")
    translate.add_argument("--out", required=True, help="folder for the translations (same file names)")
    translate.add_argument("--batch-size", type=int, default=8, help="images translated together (default 8)")
    translate.set_defaults(handler=_cmd_translate)

    projecting = command("project", "invert real images into a latent checkpoint's W (or W+, Z)",
                         "gan-lightning project runs/stylegan2_digits/checkpoints/last.ckpt --input digit.png "
                         "--out projected/",
                         "gan-lightning project CKPT --input digits/ --w-plus --steps 500 --out projected/")
    projecting.add_argument("checkpoint", help="a latent GAN's checkpoint")
    projecting.add_argument("--input", required=True, help="an image file, or a folder of jpg/png images")
    projecting.add_argument("--out", required=True, help="folder for NAME_projected.png, latents.pt, progress.png")
    projecting.add_argument("--steps", type=int, default=1000, help="optimisation steps (default 1000)")
    projecting.add_argument("--w-plus", action="store_true", help="one w per layer (W+) instead of one w")
    projecting.add_argument("--vgg-weights", default=None, metavar="FILE",
                            help="torchvision's vgg16 ImageNet weights: LPIPS-style VGG16 distance (default: pixel "
                            "MSE + the MNIST net's distance for one-channel models, pixel MSE for others)")
    projecting.add_argument("--lpips-weights", default=None, metavar="FILE",
                            help="with --vgg-weights: LPIPS's learned weights (the lpips package's "
                            "weights/v0.1/vgg.pth), learned LPIPS as stylegan2-ada's projector (default: unweighted)")
    projecting.add_argument("--pixel-only", action="store_true",
                            help="pixel MSE alone, no perceptual network (e.g. to score projections with the MNIST "
                            "classifier without having optimised against it)")
    projecting.add_argument("--seed", type=int, default=0, help="seed of the starting latents and noise")
    projecting.add_argument("--batch-size", type=int, default=16, help="images optimised together")
    projecting.set_defaults(handler=_cmd_project)

    upscale = command("upscale", "upscale images with a super-resolution checkpoint (any size)",
                      "gan-lightning upscale runs/srgan_photos/checkpoints/last.ckpt --input photos/ --out upscaled/",
                      "gan-lightning upscale CKPT --input big.png --tile 128 --out upscaled/")
    upscale.add_argument("checkpoint", help="a srresnet, srgan or esrgan checkpoint")
    upscale.add_argument("--input", required=True, help="an image, or a folder of jpg/png images")
    upscale.add_argument("--out", required=True, help="folder for the upscaled images (same file names)")
    upscale.add_argument("--tile", type=int, default=256, help="LR tile side: bounds the memory per step")
    upscale.add_argument("--overlap", type=int, default=16, help="LR pixels shared by neighbouring tiles")
    upscale.set_defaults(handler=_cmd_upscale)

    interpolate = command("interpolate", "network interpolation of two super-resolution generators of one "
                          "architecture (ESRGAN)",
                          "gan-lightning interpolate runs/rrdb_psnr_digits/checkpoints/last.ckpt "
                          "runs/esrgan_digits/checkpoints/last.ckpt --alpha 0.8 --out interpolated.ckpt")
    interpolate.add_argument("checkpoint_a", metavar="CKPT_A", help="e.g. the PSNR-oriented model")
    interpolate.add_argument("checkpoint_b", metavar="CKPT_B", help="e.g. the GAN model")
    interpolate.add_argument("--alpha", type=float, default=0.8, help="weight of B: (1 - alpha) A + alpha B")
    interpolate.add_argument("--out", required=True, help="the interpolated checkpoint (A's model config)")
    interpolate.set_defaults(handler=_cmd_interpolate)

    sweep = command("sweep", "run a W&B sweep file: online with an agent, or --local",
                    "gan-lightning sweep wgan_gp_mnist_lr --local trainer.max_steps=100",
                    "gan-lightning sweep my_sweep.yaml --count 8 --project my-project")
    sweep.add_argument("file", help="a sweep YAML (W&B format), or a shipped sweep's name (see list)")
    sweep.add_argument("overrides", nargs="*", help="dotlist for every trial (--local), e.g. trainer.max_steps=100")
    sweep.add_argument("--count", type=int, default=None, help="trials to run (a grid: all by default)")
    sweep.add_argument("--project", default=None, help="W&B project (default gan-lightning)")
    sweep.add_argument("--entity", default=None, help="W&B entity (team or user)")
    sweep.add_argument("--local", action="store_true", help="no W&B server: grid or random search here")
    sweep.add_argument("--jobs", type=int, default=1, help="--local: trials in parallel processes")
    sweep.add_argument("--out", default=None, help="--local: folder of the trials (default runs/sweeps/NAME)")
    sweep.add_argument("--seed", type=int, default=0, help="--local random: the draws' seed")
    sweep.add_argument("--dry-run", action="store_true", help="check the trials (--local: each one's config; the "
                       "first one's data, model and trainer built) and print their commands; nothing is trained")
    sweep.set_defaults(handler=_cmd_sweep)

    comparing = command("compare", "compare runs: table, FID and loss plots, sample grids",
                        "gan-lightning compare runs/dcgan_mnist runs/wgan_gp_mnist --out compare/",
                        "gan-lightning compare runs/sweeps/wgan_gp_mnist_lr --rank-by fid")
    comparing.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                           help="run directories, or folders holding them (a sweep)")
    comparing.add_argument("--out", default="compare", help="folder for compare.csv/.md and the PNGs")
    comparing.add_argument("--rank-by", default=None, metavar="SCORE",
                           help="rows best first by this final score: fid, kid, is, precision, recall, density, "
                                "coverage")
    comparing.set_defaults(handler=_cmd_compare)

    listing = command("list", "list experiments by family (with their header's first sentence), models, "
                      "datamodules, sweeps", "gan-lightning list")
    listing.set_defaults(handler=_cmd_list)

    configuring = command("config", "print an experiment's resolved config: every key, its value, meaning and "
                          "accepted values", "gan-lightning config dcgan_digits",
                          "gan-lightning config wgan_gp_mnist model.n_critic=3 | grep model.")
    configuring.add_argument("experiment", help="an experiment name (gan-lightning list) or a YAML file")
    configuring.add_argument("overrides", nargs="*", help="omegaconf dotlist applied first, e.g. model.lr_g=1e-4")
    configuring.set_defaults(handler=_cmd_config)
    return parser


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    # parse_known_args lets overrides and flags mix in any order (`train X a=1 --quiet b=2`).
    args, extra = parser.parse_known_args(argv)
    takes_overrides = args.command in ("train", "evaluate", "sweep", "config")
    unknown = [item for item in extra if item.startswith("-") or not takes_overrides]
    if unknown:
        command = f"{parser.prog} {args.command}"
        raise UsageError(f"{command}: unrecognized arguments: {' '.join(unknown)} (see {command} --help)")
    if takes_overrides:
        args.overrides = list(args.overrides) + extra
    return args


# Commands short enough to hold their warnings until they succeed: a failure is its one error line alone (Pillow's
# or the metrics' warnings about an input that is then refused are noise before it). train and sweep show theirs live.
_WARNINGS_AFTER_SUCCESS = ("sample", "evaluate", "translate", "compare", "list", "config")


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parse(argv)
    except UsageError as error:
        print(f"{error.prefix}: {error}", file=sys.stderr)
        return error.exit_code
    # Lightning chats on stderr about things a GAN run cannot act on; keep real warnings, drop these.
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # Our checkpoints are taken after the batch's updates on purpose (that is the state to resume).
    warnings.filterwarnings("ignore", message=".*no pre-optimization state was saved.*")
    # A resumed run writes into its own checkpoint folder on purpose.
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
    os.environ.setdefault("WANDB_SILENT", "true")
    held = args.command in _WARNINGS_AFTER_SUCCESS
    with warnings.catch_warnings(record=held) as caught:
        try:
            code = args.handler(args)
        except GanLightningError as error:
            print(f"{error.prefix}: {error}", file=sys.stderr)
            return error.exit_code
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return 130
    for warning in caught or ():
        warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    return code


if __name__ == "__main__":
    sys.exit(main())
