"""Models back from checkpoints, for ``sample``, ``evaluate`` and ``translate`` (and benchmarks and tests)."""

from __future__ import annotations

from pathlib import Path

import lightning as L

from gan_lightning import registry
from gan_lightning.checkpoints import NonFiniteStateError, load_checkpoint, non_finite_entries
from gan_lightning.errors import ConfigError, GanLightningError


def load_model(path: str | Path) -> L.LightningModule:
    """Rebuild a model from a checkpoint written by ``train`` (its class comes from the registry); only tensors and
    plain data are unpickled."""
    checkpoint = load_checkpoint(path)
    hparams = checkpoint["hyper_parameters"]
    config = hparams["config"]
    model_cls = registry.get_model_class(config.get("name") if isinstance(config, dict) else None)
    try:
        model = model_cls.from_hparams(hparams)
        model.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError, ConfigError) as error:
        first = " ".join(str(error).split())[:200]
        raise GanLightningError(f"{path}: its weights do not fit model {model_cls.registry_name!r} as configured in "
                                f"the checkpoint ({first})") from None
    bad = non_finite_entries(checkpoint["state_dict"])
    if bad:
        raise NonFiniteStateError(f"{path}: the model holds non-finite values ({', '.join(bad[:3])}); the run "
                                  "diverged before this checkpoint: use an earlier one")
    return model.eval()
