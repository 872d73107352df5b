"""Name -> class tables for models and datamodules.

Configs name components (``model.name: dcgan``); they never import arbitrary dotted paths, so a YAML file
cannot execute code and every accepted name can be listed in an error message. Models from other installed
packages join through the ``gan_lightning.models`` entry-point group: ``name = package.module:ModelClass`` in the
package's metadata registers ``ModelClass`` as ``name`` (in Python, ``@register_model("name")`` does the same).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from typing import TypeVar

from gan_lightning.errors import ConfigError

T = TypeVar("T", bound=type)

MODELS: dict[str, type] = {}
DATAMODULES: dict[str, type] = {}

# Modules whose import fills the tables above (each variant registers itself with a decorator).
_PROVIDERS = ("gan_lightning.models", "datamodules")
ENTRY_POINT_GROUP = "gan_lightning.models"


def _register(table: dict[str, type], name: str) -> Callable[[T], T]:
    def decorator(cls: T) -> T:
        if name in table and table[name] is not cls:
            raise ValueError(f"{name!r} is registered twice ({table[name].__name__} and {cls.__name__})")
        table[name] = cls
        cls.registry_name = name
        return cls

    return decorator


def register_model(name: str) -> Callable[[T], T]:
    return _register(MODELS, name)


def register_datamodule(name: str) -> Callable[[T], T]:
    return _register(DATAMODULES, name)


def _load_providers() -> None:
    for module in _PROVIDERS:
        importlib.import_module(module)
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if MODELS.get(entry.name) is not None and MODELS[entry.name].__module__ == entry.module:
            continue  # loaded before
        try:
            model_cls = entry.load()
        except Exception as error:  # the other package's import failed: say which, in one line
            raise ConfigError(f"entry point {entry.name} = {entry.value} ({ENTRY_POINT_GROUP}): cannot load it: "
                              f"{type(error).__name__}: {error}") from None
        if not isinstance(model_cls, type):
            raise ConfigError(f"entry point {entry.name} = {entry.value} ({ENTRY_POINT_GROUP}): not a class")
        register_model(entry.name)(model_cls)


def _lookup(table: dict[str, type], name: object, key: str) -> type:
    _load_providers()
    if not isinstance(name, str) or name not in table:  # a list or mapping from YAML is not a name (nor hashable)
        raise ConfigError(f"{key}: unknown name {name!r}; accepted: {', '.join(sorted(table))}")
    return table[name]


def get_model_class(name: object) -> type:
    return _lookup(MODELS, name, "model.name")


def get_datamodule_class(name: object) -> type:
    return _lookup(DATAMODULES, name, "data.name")


def model_names() -> list[str]:
    _load_providers()
    return sorted(MODELS)


def datamodule_names() -> list[str]:
    _load_providers()
    return sorted(DATAMODULES)
