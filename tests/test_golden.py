"""Golden results: every shipped experiment, trained a few batches at tiny widths from the CLI with sample grids and
evaluation on, ends with the same weights, optimizer states, grids and scores as recorded in ``golden.json``.

The record pins behaviour across refactors of the training loop: a change that reorders a floating-point sum, draws
one more random number or moves a technique's work to another point of the batch changes a digest. Digests are
exact only for one torch build on one kind of CPU, so the record names both; elsewhere the test skips and says so.
Re-record (``python -m tests.test_golden``) only on a commit whose behaviour is known to be right, and say why in the
commit message.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from gan_lightning.checkpoints import load_checkpoint
from gan_lightning.cli import main
from gan_lightning.config import EXPERIMENTS_DIR
from tests.conftest import write_fake_mnist, write_unpaired

GOLDEN = Path(__file__).with_name("golden.json")
EXPERIMENTS = sorted(path.stem for path in EXPERIMENTS_DIR.glob("*.yaml"))
# Evaluation on the shipped MNIST classifier (offline), mid-run and at the end, so its random draws interleave with
# training's; grids every two batches.
COMMON = ["trainer.accelerator=cpu", "trainer.log_every_n_steps=1", "run.quiet=true", "trainer.max_epochs=null",
          "callbacks.samples.every_n_steps=2", "callbacks.samples.n=8", "callbacks.samples.nrow=4",
          "callbacks.checkpoint.every_n_steps=1000", "callbacks.metrics.enabled=true",
          "callbacks.metrics.extractor=mnist", "callbacks.metrics.every_n_steps=2", "callbacks.metrics.n_samples=16",
          "callbacks.metrics.n_real=32", "callbacks.metrics.batch_size=8", "callbacks.metrics.metrics=fid,kid"]


def _data(experiment: str, raw, root: Path, monkeypatch) -> list[str]:
    """Overrides that point the experiment's data at a small fake layout made under ``root``."""
    name = raw.data.name
    if name == "toy":
        # Points, not images: the mode metrics evaluate instead of the image metrics.
        return ["data.n=256", "data.batch_size=32", "data.eval_samples=64", "data.eval_every_n_steps=2",
                "callbacks.metrics.enabled=false"]
    if name == "digits":
        return ["data.batch_size=8", "data.limit=64"]
    if name == "mnist":
        write_fake_mnist(root)
        return [f"data.root={root}", "data.download=false", "data.batch_size=8", "data.limit=64"]
    if name == "celeba":
        from datamodules.celeba import write_fake_celeba

        write_fake_celeba(root, n=12)
        return [f"data.root={root}", "data.download=false", "data.image_size=16", "data.batch_size=4",
                f"data.cache_dir={root / 'cache'}"]
    if name == "unpaired":
        write_unpaired(root)
        return [f"data.root={root}", "data.download=false", "data.load_size=16", "data.crop_size=12",
                "model.n_blocks=1", "model.d_layers=2", "model.lr_schedule=constant"]
    if name == "paired":
        from datamodules import paired

        if experiment == "pix2pix_edges2digits":  # its offline writer, made small
            small = paired.write_edges2digits
            monkeypatch.setattr(paired, "write_edges2digits",
                                lambda path: small(path, counts={"train": 16, "val": 4, "test": 4}))
            return [f"data.root={root}", "model.d_layers=1", "model.lr_schedule=constant"]
        from tests.datamodules.test_paired import write_dataset

        write_dataset(root, size=16, channels=3, noise=True)
        return [f"data.root={root}", "data.download=false", "data.load_size=18", "data.crop_size=16",
                "data.channels=3", "model.d_layers=1", "model.lr_schedule=constant"]
    if name == "folder":  # random-level grey images as RGB files
        from tests.datamodules.test_folder import write_images

        write_images(root / "images", list(range(10, 250, 20)))
        return [f"data.root={root / 'images'}", "data.image_size=16", "data.batch_size=4",
                f"data.cache_dir={root / 'cache'}"]
    if name == "superres":  # digits and photos ship offline; a folder recipe gets random photos
        from tests.test_superres_experiments import tiny_data

        metrics = [] if raw.data.source == "digits" else ["callbacks.metrics.enabled=false"]  # MNIST extractor: grey 28
        return [*tiny_data(raw, root), *metrics]
    raise AssertionError(f"{experiment}: no fake layout for data.name={name}")


def _model(raw) -> list[str]:
    if raw.model.name == "gan":
        return ["model.hidden_g=[8]", "model.hidden_d=[8]", "model.latent_dim=4"]
    if raw.model.name == "stylegan2":
        return ["model.latent_dim=8", "model.w_dim=8", "model.channel_base=64", "model.channel_max=8",
                "model.mapping_layers=1"]
    if raw.data.name == "superres":
        from tests.test_superres_experiments import tiny_model

        return tiny_model(raw)
    latent = [] if raw.model.name in ("cyclegan", "pix2pix") else ["model.latent_dim=8"]
    return ["model.width_g=4", "model.width_d=4", *latent]


def _sha(*chunks: bytes) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _tensor_bytes(name: str, tensor: torch.Tensor) -> bytes:
    tensor = tensor.detach().cpu().contiguous()
    return f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode() + tensor.reshape(-1).view(torch.uint8).numpy(
    ).tobytes()


def _state_digests(checkpoint: dict) -> dict[str, str]:
    weights = _sha(*(_tensor_bytes(k, v) for k, v in sorted(checkpoint["state_dict"].items())))
    optimizers = []
    for index, state in enumerate(checkpoint["optimizer_states"]):
        chunks = []
        for param, values in sorted(state["state"].items()):
            for key, value in sorted(values.items()):
                name = f"{index}.{param}.{key}"
                chunks.append(_tensor_bytes(name, value) if isinstance(value, torch.Tensor) else f"{name}={value}"
                              .encode())
        optimizers.append(_sha(*chunks))
    return {"weights": weights, "optimizers": _sha(*(o.encode() for o in optimizers))}


def run_golden(experiment: str, tmp_path: Path, monkeypatch) -> dict[str, object]:
    """Train ``experiment`` tiny and return its digests: weights, optimizer states, grids, evaluation scores."""
    raw = OmegaConf.load(EXPERIMENTS_DIR / f"{experiment}.yaml")
    steps = max(3, raw.model.get("n_critic", 1) + 1)  # at least one generator update, and batches after it
    run = tmp_path / "run"
    args = ["train", experiment, f"run.dir={run}", f"trainer.max_steps={steps}", *COMMON,
            f"callbacks.metrics.cache_dir={tmp_path / 'stats'}", *_model(raw),
            *_data(experiment, raw, tmp_path / "data", monkeypatch)]
    assert main(args) == 0
    checkpoint = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == steps
    result: dict[str, object] = {"steps": steps, **_state_digests(checkpoint)}
    result["grids"] = _sha(*(p.name.encode() + p.read_bytes() for p in sorted((run / "samples").glob("*.png"))))
    scores = {}
    for path in sorted([*(run / "metrics").glob("*.json"), *(run / "modes").glob("*.json")]):
        scores[f"{path.parent.name}/{path.stem}"] = json.loads(path.read_text())
    result["scores"] = _sha(json.dumps(scores, sort_keys=True).encode())
    return result


def _platform() -> dict[str, str]:
    return {"torch": torch.__version__, "cpu": torch.backends.cpu.get_cpu_capability()}


def _record() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_reproduces_its_golden_digests(experiment: str, tmp_path: Path, monkeypatch) -> None:
    record = _record()
    if record["platform"] != _platform():
        pytest.skip(f"golden digests were recorded with {record['platform']}, this is {_platform()}")
    assert experiment in record["experiments"], f"{experiment}: new experiment, record its golden digests"
    assert run_golden(experiment, tmp_path, monkeypatch) == record["experiments"][experiment]


def test_every_experiment_has_a_record() -> None:
    assert sorted(_record()["experiments"]) == EXPERIMENTS


if __name__ == "__main__":  # python -m tests.test_golden [EXPERIMENT ...]: (re-)record
    import tempfile

    chosen = sys.argv[1:] or EXPERIMENTS
    record = _record() if GOLDEN.is_file() else {"experiments": {}}
    record["platform"] = _platform()
    with pytest.MonkeyPatch.context() as patch:
        for name in chosen:
            with tempfile.TemporaryDirectory() as folder:
                record["experiments"][name] = run_golden(name, Path(folder), patch)
                print(name, record["experiments"][name]["weights"][:12], flush=True)
    record["experiments"] = dict(sorted(record["experiments"].items()))
    GOLDEN.write_text(json.dumps(record, indent=1) + "\n")
