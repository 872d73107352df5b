"""What each config key means and accepts, for ``gan-lightning config``: read from the schemas themselves.

The meaning of a key is the comment that documents its field in the Config dataclass (on the field's line, or the
comment lines just above it): the schema's source is the one place a key is described, so this module keeps no
table of its own that could drift from it. A field a subclass redefines (a new default) keeps the nearest
comment up its bases. ``trainer`` keys are ``lightning.Trainer`` arguments: their meaning is the first sentence of
Lightning's own docstring for the argument. What a key accepts is the value check the model runs on it
(``config_checks``), else its type.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import re
import textwrap
import tokenize
import types
import typing
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from gan_lightning import registry
from gan_lightning.config import _FIXED_SECTIONS, _type_hints, flatten

# trainer.max_steps means something else here than in Lightning (which counts optimizer steps): the framework's
# meaning (gan_lightning.engine), the one trainer key that needs its own line.
_FRAMEWORK_TRAINER_MEANINGS = {"max_steps": "training batches before the run stops (not optimizer steps); -1 = no "
                                            "limit (then trainer.max_epochs stops it)"}


@dataclasses.dataclass(frozen=True)
class KeyHelp:
    key: str  # dotted, e.g. model.lr_g
    value: Any
    meaning: str
    accepted: str


def field_comments(schema: type) -> dict[str, str]:
    """Field name -> its documenting comment, for a dataclass and its bases (the nearest commented definition)."""
    found: dict[str, str] = {}
    for cls in schema.__mro__:
        if dataclasses.is_dataclass(cls):
            for name, text in _own_field_comments(cls).items():
                found.setdefault(name, text)
    return found


@functools.cache
def _own_field_comments(cls: type) -> dict[str, str]:
    """The comments of the fields ``cls`` itself defines: trailing comments first, else the comment block right
    above the field (no blank line between)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (a frozen build): no meanings, which the caller reports
        return {}
    lines = source.splitlines()
    comments = {token.start[0]: token.string.lstrip("#").strip()
                for token in tokenize.generate_tokens(io.StringIO(source).readline) if token.type == tokenize.COMMENT}
    classdef = ast.parse(source).body[0]
    found: dict[str, str] = {}
    for node in getattr(classdef, "body", []):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        trailing = [comments[n] for n in range(node.lineno, node.end_lineno + 1) if n in comments]
        above: list[str] = []
        line = node.lineno - 1
        while line in comments and lines[line - 1].lstrip().startswith("#"):
            above.insert(0, comments[line])
            line -= 1
        text = " ".join(trailing or [part for part in above if not part.startswith("---")])
        if text:
            found[node.target.id] = text
    return found


def _type_name(hint: Any) -> str:
    """int | None -> "int or null"; list[str] -> "a list of str"."""
    if hint is None:
        return ""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(argument) for argument in arguments)
    if origin in (list, tuple):
        return f"a list of {_type_name(arguments[0])}" if arguments else "a list"
    if origin is dict:
        return "a mapping"
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))


@functools.cache
def _trainer_meanings() -> dict[str, str]:
    """Lightning's ``Trainer.__init__`` docstring, ``Args:`` section: argument -> its first sentence."""
    import lightning

    doc = inspect.getdoc(lightning.Trainer.__init__) or ""
    meanings: dict[str, str] = {}
    for match in re.finditer(r"^    (\w+): (.*?)(?=^    \w+: |\Z)", doc.split("Args:", 1)[-1], re.M | re.S):
        text = " ".join(match.group(2).split()).replace("``", "")
        meanings[match.group(1)] = re.split(r"(?<=[a-z)])\. ", text, maxsplit=1)[0].rstrip(".")
    return {**meanings, **_FRAMEWORK_TRAINER_MEANINGS}


def _schema_fields(schema: type, config: DictConfig, section: str,
                   accepted_by_check: dict[str, str]) -> list[KeyHelp]:
    """One KeyHelp per leaf of ``config`` under ``schema`` (nested dataclasses followed; mappings of dataclasses,
    e.g. data.test_sets, by their entries)."""
    comments, hints = field_comments(schema), _type_hints(schema)
    rows: list[KeyHelp] = []
    for field in dataclasses.fields(schema):
        key, value, hint = f"{section}.{field.name}", config.get(field.name), hints.get(field.name)
        nested = _dataclass_in(hint)
        if nested is not None and isinstance(value, DictConfig) and value:
            if typing.get_origin(hint) is dict:  # named entries: each is one nested config
                for entry, sub in value.items():
                    rows += _schema_fields(nested, sub, f"{key}.{entry}", {})
            else:
                rows += _schema_fields(nested, value, key, {})
            continue
        rows.append(KeyHelp(key, _plain(value), comments.get(field.name, ""),
                            accepted_by_check.get(field.name) or _type_name(hint)))
    return rows


def _dataclass_in(hint: Any) -> type | None:
    """The dataclass a field holds: itself, or the values of a ``dict[str, Dataclass]``."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return hint
    arguments = typing.get_args(hint)
    if typing.get_origin(hint) is dict and len(arguments) == 2 and dataclasses.is_dataclass(arguments[1]):
        return arguments[1]
    return None


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value


def describe(config: DictConfig) -> list[KeyHelp]:
    """Every key of a validated experiment, section by section, with its value, meaning and accepted values."""
    import lightning

    model_cls = registry.get_model_class(config.model.name)
    data_cls = registry.get_datamodule_class(config.data.name)
    model_checks = {key: accepted for key, _, accepted in model_cls.config_checks(config.model)}
    rows = _schema_fields(model_cls.Config, config.model, "model", model_checks)
    rows += _schema_fields(data_cls.Config, config.data, "data", {})
    trainer_meanings = _trainer_meanings()
    trainer_hints = _type_hints(lightning.Trainer.__init__)
    for key, value in flatten(config.trainer).items():
        name = key.split(".")[0]
        rows.append(KeyHelp(f"trainer.{key}", value, trainer_meanings.get(name, ""),
                            _type_name(trainer_hints.get(name)).replace("typing.", "")))
    for section, schema in _FIXED_SECTIONS.items():
        rows += _schema_fields(schema, config[section], section, {})
    return rows


def format_help(rows: list[KeyHelp]) -> str:
    """``key: value`` as YAML would show it, then ``# meaning [accepted]`` on the same line, a blank line between
    sections."""
    out: list[str] = []
    section = None
    for row in rows:
        head = row.key.split(".")[0]
        if section is not None and head != section:
            out.append("")
        section = head
        value = yaml.safe_dump(row.value, default_flow_style=True, width=10**6).strip()
        value = value[: -len("...")].strip() if value.endswith("...") else value
        out.append(f"{row.key}: {value}  # {row.meaning} [{row.accepted}]")
    return "\n".join(out) + "\n"
