"""FID/IS/KID wired into training (callback) and the evaluate command."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from gan_lightning.cli import main
from tests.conftest import tiny_overrides

METRICS = ["callbacks.metrics.enabled=true", "callbacks.metrics.every_n_steps=2", "callbacks.metrics.n_samples=40",
           "callbacks.metrics.n_real=48", "callbacks.metrics.batch_size=20"]


def test_metrics_are_logged_during_training(fake_mnist: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cache = tmp_path / "cache"
    code = main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 4), *METRICS,
                 f"callbacks.metrics.cache_dir={cache}", "callbacks.checkpoint.monitor=val/fid"])
    assert code == 0
    rows = [r for r in csv.DictReader((run / "metrics.csv").read_text().splitlines()) if r.get("val/fid")]
    assert [int(r["step"]) for r in rows] == [1, 3]  # logged at the batches ending on global steps 2 and 4
    for row in rows:
        assert float(row["val/fid"]) > 0 and float(row["val/is"]) >= 1.0 and row["val/kid"]
        assert 1 <= float(row["val/classes_covered"]) <= 10
    report = json.loads((run / "metrics" / "step_0000004.json").read_text())
    assert sum(report["class_histogram"]) == 40 and report["real_stats_cached"] is False
    assert len(list(cache.glob("*.pt"))) == 1  # real statistics computed once, then reused in the run
    best = [p.name for p in (run / "checkpoints").iterdir() if p.name != "last.ckpt"]
    assert len(best) == 1  # ModelCheckpoint kept the best val/fid


def test_evaluate_prints_json_and_reuses_cached_statistics(fake_mnist: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 2)]) == 0
    capsys.readouterr()
    args = ["evaluate", str(run / "checkpoints" / "last.ckpt"), "--n", "30", "--n-real", "40",
            "--cache-dir", str(tmp_path / "cache"), "--batch-size", "16"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert first["real_stats_cached"] is False and second["real_stats_cached"] is True
    assert first["fid"] == pytest.approx(second["fid"], rel=1e-9)  # seeded samples: the same number twice
    assert {"fid", "is", "is_std", "kid", "kid_std", "class_histogram", "step"} <= set(first)
    assert first["step"] == 2 and "rank-deficient" in first["warning"]
    written = json.loads((run / "evaluation_step0000002_mnist.json").read_text())
    assert written["fid"] == second["fid"]


def test_evaluate_metric_subset_and_data_override(fake_mnist: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 2)]) == 0
    capsys.readouterr()
    moved = tmp_path / "moved"
    fake_mnist.rename(moved)  # the data moved since training: point the stored experiment at it
    assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), "--metrics", "is", "--n", "20",
                 f"data.root={moved}"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert "is" in scores and "fid" not in scores and scores["real_stats_cached"] is None


@pytest.mark.parametrize("args, message", [
    (["--metrics", "fid,lpips"], "unknown metric(s) ['lpips']; accepted: fid, is, kid, precision, recall, density, "
                                 "coverage"),
    (["--extractor", "clip"], "callbacks.metrics.extractor: 'clip'; accepted: inception, mnist"),
    (["--protocol", "lanczos"], "callbacks.metrics.protocol: 'lanczos'; accepted: antialias, tf, clean"),
    (["--extractor", "inception", "--inception-weights", "/nope/pt_inception.pth"],
     "/nope/pt_inception.pth"),
])
def test_evaluate_bad_options_are_one_line(fake_mnist: Path, tmp_path: Path, capsys, args, message) -> None:
    run = tmp_path / "run"
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 1)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), "--n", "10", *args]) in (1, 2)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("overrides, message", [
    (["callbacks.metrics.metrics=fid,psnr"], "callbacks.metrics.metrics"),
    (["callbacks.metrics.precision_recall_k=0"], "callbacks.metrics.precision_recall_k"),
    (["callbacks.metrics.metrics=coverage", "callbacks.metrics.density_coverage_k=9", "callbacks.metrics.n_samples=9"],
     "callbacks.metrics.n_samples: 9; accepted: an int >= 10 (coverage needs the 9-th nearest neighbour"),
])
def test_metrics_config_is_validated_before_training(capsys, overrides: list[str], message: str) -> None:
    assert main(["train", "dcgan_mnist", *overrides, "--dry-run"]) == 2
    assert message in capsys.readouterr().err


def test_precision_recall_density_coverage_in_training_and_evaluate(fake_mnist: Path, tmp_path: Path,
                                                                    capsys) -> None:
    run, cache = tmp_path / "run", tmp_path / "cache"
    manifold = "precision,recall,density,coverage"
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 2), *METRICS, f"callbacks.metrics.cache_dir="
                 f"{cache}", f"callbacks.metrics.metrics=fid,{manifold}"]) == 0
    logged = [r for r in csv.DictReader((run / "metrics.csv").read_text().splitlines()) if r.get("val/recall")]
    during = json.loads((run / "metrics" / "step_0000002.json").read_text())
    for name in manifold.split(","):
        assert float(logged[-1][f"val/{name}"]) == pytest.approx(during[name])
        assert 0 <= during[name] and (name == "density" or during[name] <= 1)  # density is not a share
    capsys.readouterr()
    # The same checkpoint, samples and real sample from `evaluate`: the same numbers, the radii from the cache.
    assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), "--metrics", f"fid,{manifold}", "--n", "40",
                 "--n-real", "48", "--batch-size", "20", "--cache-dir", str(cache)]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert alone["real_stats_cached"] is True
    assert {name: alone[name] for name in manifold.split(",")} == {name: during[name] for name in manifold.split(",")}


def test_evaluate_protocols_have_their_own_statistics_and_reports(fake_mnist: Path, tmp_path: Path, capsys) -> None:
    run, cache = tmp_path / "run", tmp_path / "cache"
    # 32 x 32 digits: the shipped classifier's 28 x 28 input needs a resize, so the protocol matters.
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 1), "data.image_size=32"]) == 0
    scores = {}
    for protocol in ("antialias", "tf", "clean"):
        capsys.readouterr()
        assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), "--metrics", "fid", "--n", "20",
                     "--n-real", "30", "--cache-dir", str(cache), "--protocol", protocol]) == 0
        scores[protocol] = json.loads(capsys.readouterr().out)
    assert scores["antialias"]["extractor"].startswith("mnist-cnn-")
    assert scores["tf"]["extractor"] == scores["antialias"]["extractor"] + "-resize-tf"
    assert scores["clean"]["extractor"] == scores["antialias"]["extractor"] + "-resize-clean"
    assert len({round(s["fid"], 6) for s in scores.values()}) == 3  # three resizes, three numbers
    assert len(list(cache.glob("*.pt"))) == 3  # one statistics file per protocol: the key includes it
    assert sorted(p.name for p in run.glob("evaluation_*.json")) == [
        "evaluation_step0000001_mnist.json", "evaluation_step0000001_mnist_clean.json",
        "evaluation_step0000001_mnist_tf.json"]


def test_intra_fid_of_a_conditional_model_is_the_mean_of_per_class_fids(fake_mnist: Path, tmp_path: Path,
                                                                          capsys) -> None:
    from gan_lightning.loading import load_model
    from gan_lightning.metrics import build_extractor, extract, feature_statistics, frechet_distance

    run = tmp_path / "run"
    assert main(["train", "cgan_mnist", *tiny_overrides(fake_mnist, run, 1), "callbacks.checkpoint.monitor=null"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), "--metrics", "fid,intra_fid", "--n", "40",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    scores = json.loads(capsys.readouterr().out)
    per_class = scores["intra_fid_per_class"]
    assert len(per_class) == 10 and scores["intra_fid"] == pytest.approx(sum(per_class) / 10) and "fid" in scores
    # Class 3 by hand: 4 samples of class 3 (latents seeded 0 + 3) against the data's images of class 3.
    from datamodules.mnist import MNISTDataModule

    model = load_model(run / "checkpoints" / "last.ckpt")
    data = MNISTDataModule({"root": str(fake_mnist), "download": False, "limit": 64, "batch_size": 8})
    data.setup()
    real_images = data.real_samples(64)[data.labels == 3]
    extractor = build_extractor("mnist")
    real = feature_statistics(extract(extractor, real_images).features)
    fake = feature_statistics(extract(extractor, model.draw_samples(4, 3, 3)).features)
    assert per_class[3] == pytest.approx(frechet_distance(*real, *fake), rel=1e-9)
    # An unconditional model: one line.
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, tmp_path / "plain", 1)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "plain" / "checkpoints" / "last.ckpt"), "--metrics", "intra_fid",
                 "--n", "40"]) == 1
    err = capsys.readouterr().err
    assert err == "error: intra_fid needs a class-conditional model (one class label per sample)\n"


def test_cas_trains_the_fixed_classifier_on_generated_and_on_real_digits(fake_mnist: Path, tmp_path: Path,
                                                                          capsys) -> None:
    import torch

    from datamodules.mnist import MNISTDataModule
    from gan_lightning.loading import load_model
    from gan_lightning.metrics.mnist import accuracy, load_mnist_test
    from gan_lightning.metrics.train_mnist_classifier import fit_classifier
    from tests.conftest import write_fake_mnist

    write_fake_mnist(fake_mnist, split="test", n=40)
    run = tmp_path / "run"
    assert main(["train", "cgan_mnist", *tiny_overrides(fake_mnist, run, 1), "callbacks.checkpoint.monitor=null"]) == 0
    checkpoint = str(run / "checkpoints" / "last.ckpt")
    capsys.readouterr()
    assert main(["evaluate", checkpoint, "--metrics", "cas"]) == 1
    assert "set callbacks.metrics.cas_test_root" in capsys.readouterr().err
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the classifiers train on one thread whatever the caller's count, which is restored
    try:
        assert main(["evaluate", checkpoint, "--metrics", "cas", "callbacks.metrics.cas_per_class=4",
                     "callbacks.metrics.cas_epochs=1", f"callbacks.metrics.cas_test_root={fake_mnist}",
                     "callbacks.metrics.seed=2"]) == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)  # the reference below: one thread, as the score's recipe
    scores = json.loads(capsys.readouterr().out)
    # The recipe by hand: 4 samples of each class (latents seeded 2 + class), the first 4 real digits of each class,
    # one epoch of fit_classifier with seed 2 each, accuracy on the test split.
    model = load_model(checkpoint)
    data = MNISTDataModule({"root": str(fake_mnist), "download": False, "limit": 64, "batch_size": 8})
    labels = torch.arange(10).repeat_interleave(4)
    test = load_mnist_test(fake_mnist)
    for key, images in (("cas", torch.cat([model.draw_samples(4, 2 + c, c) for c in range(10)])),
                        ("cas_real", torch.cat([data.real_samples_of_class(c, 4) for c in range(10)]))):
        assert scores[key] == accuracy(fit_classifier(images, labels, 1, seed=2, verbose=False), *test), key
    torch.set_num_threads(threads)
