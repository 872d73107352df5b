"""The guarded update: one player's optimizer step under Lightning's manual optimization, with a divergence guard.

Each update is toggle -> loss -> zero_grad -> manual_backward -> (the precision plugin unscales) -> guard check ->
clip -> step -> untoggle, so precision plugins (16-mixed GradScaler, bf16) and DDP see every backward. The guard
skips an update whose loss or gradients hold NaN/inf (weights and optimizer state untouched) and counts it; a batch
with a skipped update gets back the floating-point buffers (batchnorm statistics) it poisoned in the forward pass,
and ``max_nonfinite_batches`` such batches in a row stop the run with one line. Under a GradScaler, non-finite
gradients are overflow the scaler handles (it skips the step and lowers its scale): counted apart, not divergence.

Lightning counts every ``optimizer.step()`` as a global step; here only a batch's first step is counted, so
``trainer.max_steps`` means training batches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import Tensor

from gan_lightning.errors import GanLightningError


class DivergenceError(GanLightningError):
    """Too many consecutive batches with non-finite losses or gradients."""


def all_finite(tensors: list[Tensor]) -> bool:
    """Whether every value of ``tensors`` is finite, read through each tensor's sum (NaN and inf propagate through a
    sum), one host read. A sum of finite values beyond float32's range (3.4e38) also counts as non-finite: Adam's
    squared gradients overflow long before (beyond 1.8e19), so no such update is worth taking. A sum is one
    vectorised pass: 0.04 ms for DCGAN-MNIST's G gradients on one CPU thread, against 1.05 ms for their infinity
    norm (``torch.nn.utils.get_total_norm``)."""
    return bool(torch.stack([t.sum(dtype=torch.float32) for t in tensors]).isfinite().all())


def _no_closure() -> None:
    return None


def wrappers_are_idle(module: Any) -> bool:
    """True when Lightning's per-update wrappers (``manual_backward``, ``LightningOptimizer.step``) would do nothing
    but the backward, the step and the module's ``on_before_optimizer_step``: one device, 32-bit, and no callback or
    module hook on backward or the optimizer step. The engine then calls those itself, and two private methods of
    LightningOptimizer that count the step (``_on_before_step``/``_on_after_step``, checked here to exist). Measured
    on the 2-core CPU (benchmarks/scaling.py, DCGAN-MNIST at batch 64, one pinned thread, 2026-12-05): framework
    against plain 1.052 [1.022-1.105] over 20 pairs through the wrappers, 1.022 [0.992-1.062] over 12 pairs
    without. Under DDP (gradient-sync bookkeeping) and mixed precision (loss scaling) the wrappers are needed."""
    trainer = module.trainer
    if type(trainer.strategy) is not SingleDeviceStrategy or type(trainer.precision_plugin) is not Precision:
        return False
    hooks = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
    if any(is_overridden(hook, callback, L.Callback) for callback in trainer.callbacks for hook in hooks):
        return False
    if any(is_overridden(hook, module, L.LightningModule) for hook in ("on_before_backward", "on_after_backward",
                                                                         "backward")):
        return False
    optimizers = module.optimizers()
    optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
    return all(hasattr(optimizer, "_on_before_step") for optimizer in optimizers)  # private in Lightning 2.x


class UpdateEngine:
    """Runs a model's guarded updates, batch by batch; ``state_dict`` holds the guard's counters."""

    def __init__(self, max_nonfinite_batches: int) -> None:
        self.max_nonfinite_batches = max_nonfinite_batches
        self.skipped_steps = 0  # updates skipped by the guard, over the whole run
        self.amp_skipped_steps = 0  # updates the GradScaler skipped (fp16 overflow)
        self.nonfinite_streak = 0  # consecutive batches with a skipped update
        self._pending: tuple[Tensor, float | None] | None = None  # the update in flight: its loss and clip bound
        self._skipped = False
        self._counted = False
        self._batch_ok = True
        self._buffers: list[tuple[Tensor, Tensor]] = []
        self._direct = False  # set per fit: see wrappers_are_idle

    def start_fit(self, module: Any) -> None:
        self._direct = wrappers_are_idle(module)

    def start_batch(self, module: torch.nn.Module) -> None:
        """Copies of the floating-point buffers as they are before the batch: a NaN batch poisons batchnorm's
        running statistics in the forward pass, before its loss can be checked."""
        self._counted, self._batch_ok = False, True
        self._buffers = [(b, b.detach().clone()) for b in module.buffers() if b.is_floating_point()]

    def update(self, module: Any, optimizer: LightningOptimizer, compute_loss: Callable[[], tuple[Tensor, dict]],
               clip: float | None) -> tuple[dict[str, Tensor], bool]:
        """One update of the player ``optimizer`` holds; returns ``compute_loss``'s logs and whether it stepped
        (False: the guard skipped it)."""
        module.toggle_optimizer(optimizer)
        loss, logs = compute_loss()
        optimizer.zero_grad(set_to_none=True)
        # Checked and clipped in before_optimizer_step: the precision plugin calls it after unscaling (16-mixed), so
        # the check and the bound see the true gradients.
        self._pending, self._skipped = (loss.detach(), clip), False
        scaler = module.grad_scaler()
        scale_before = scaler.get_scale() if scaler is not None else None
        if self._direct:  # what Lightning's wrappers would do here, without them (see wrappers_are_idle)
            loss.backward()
            module.on_before_optimizer_step(optimizer.optimizer)
            if not self._counted:
                optimizer._on_before_step()  # the manual loop's step counter: trainer.global_step
            optimizer.optimizer.step()
            if not self._counted:
                optimizer._on_after_step()
        elif not self._counted:
            module.manual_backward(loss)
            optimizer.step()  # LightningOptimizer.step: trainer.global_step counts it
        else:  # the same precision-plugin/strategy path, without the counter
            module.manual_backward(loss)
            module.trainer.strategy.optimizer_step(optimizer.optimizer, _no_closure, model=module)
        self._counted = True
        if scaler is not None and not self._skipped and scaler.get_scale() < scale_before:
            self.amp_skipped_steps += 1  # the scaler lowers its scale when it skips an update
        module.untoggle_optimizer(optimizer)
        self.skipped_steps += self._skipped
        self._batch_ok = self._batch_ok and not self._skipped
        return logs, not self._skipped

    def before_optimizer_step(self, module: Any, optimizer: torch.optim.Optimizer) -> None:
        """The guard's check, then gradient clipping (the module's ``on_before_optimizer_step``)."""
        pending, self._pending = self._pending, None
        if pending is None:  # a step not taken through update()
            return
        loss, clip = pending
        checked = [loss.float()]
        if module.grad_scaler() is None:  # under a scaler, non-finite gradients are its overflow
            checked += [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not all_finite(checked):
            self._skipped = True
            optimizer.zero_grad(set_to_none=True)  # torch optimizers leave parameters without gradients untouched
            return
        if clip is not None:
            module.clip_gradients(optimizer, gradient_clip_val=clip, gradient_clip_algorithm="norm")

    def end_batch(self, batch: int) -> None:
        """After the batch's updates (``batch``: its 1-based number): restore poisoned buffers, stop a diverged run."""
        if self._batch_ok:
            self.nonfinite_streak = 0
            return
        self.nonfinite_streak += 1
        with torch.no_grad():
            for buffer, saved in self._buffers:
                if not bool(torch.isfinite(buffer).all()):
                    buffer.copy_(saved)
        if self.nonfinite_streak >= self.max_nonfinite_batches:
            raise DivergenceError(
                f"training diverged: {self.nonfinite_streak} consecutive batches (to batch {batch}) had non-finite "
                f"losses or gradients (model.max_nonfinite_batches={self.max_nonfinite_batches}); stopped without "
                "saving: checkpoints/last.ckpt, if any, keeps the last periodic state")

    def state_dict(self) -> dict[str, int]:
        return {"skipped_steps": self.skipped_steps, "streak": self.nonfinite_streak,
                "amp_skipped_steps": self.amp_skipped_steps}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.nonfinite_streak = int(state.get("streak", 0))
        self.amp_skipped_steps = int(state.get("amp_skipped_steps", 0))
