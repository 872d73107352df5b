"""How the training processes are started and end: the DDP strategy, torchrun/SLURM detection, which process owns
the run directory, and checks that only make sense across ranks.

GANs update their networks in turns, so every DDP strategy here is built with ``find_unused_parameters=True``;
processes started by torchrun or srun always train under DDP (see ``resolve_strategy``).
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

import lightning as L
from omegaconf import DictConfig

from gan_lightning.errors import ConfigError

DDP_START_METHODS = {"ddp": "popen", "ddp_find_unused_parameters_true": "popen", "ddp_find_unused_parameters_false":
                     "popen", "ddp_spawn": "spawn", "ddp_fork": "fork", "ddp_notebook": "fork"}


def several_processes(trainer_kwargs: dict[str, Any]) -> bool:
    """Whether Lightning's "auto" strategy would pick DDP: more than one device or node."""
    devices, nodes = trainer_kwargs.get("devices", "auto"), trainer_kwargs.get("num_nodes", 1)
    if nodes > 1:
        return True
    if devices == "auto":  # every visible GPU, unless the accelerator says CPU
        import torch

        return trainer_kwargs.get("accelerator", "auto") in ("auto", "gpu", "cuda") and torch.cuda.device_count() > 1
    if isinstance(devices, str) and devices not in ("auto", "1"):
        return devices == "-1" or "," in devices.strip(",") or (devices.isdigit() and int(devices) > 1)
    if isinstance(devices, list):
        return len(devices) > 1
    return isinstance(devices, int) and (devices > 1 or devices == -1)


def external_launcher() -> tuple[str, int] | None:
    """("torchrun" or "srun", processes it started) when one of them started this process, else None."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    if TorchElasticEnvironment.detect():  # first, as in Lightning: torchrun can run inside a SLURM job
        return "torchrun", int(os.environ.get("WORLD_SIZE", "1"))
    if SLURMEnvironment.detect():
        return "srun", int(os.environ.get("SLURM_NTASKS", "1"))
    return None


def resolve_strategy(trainer_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``trainer_kwargs`` with the strategy a GAN needs (a DDPStrategy object where DDP applies)."""
    # Alternating updates leave one network without gradients in each backward: DDP must know, whether the
    # strategy is named or Lightning would choose DDP itself for several devices or nodes. Processes started by
    # torchrun or srun get DDP too: with "auto" and trainer.devices=1 Lightning would let each train on its own
    # (all writing one run directory); under DDP a devices/num_nodes mismatch is refused (build_trainer).
    strategy = trainer_kwargs.get("strategy", "auto")
    launcher = external_launcher()
    if strategy == "auto" and (several_processes(trainer_kwargs) or (launcher is not None and launcher[1] > 1)):
        strategy = "ddp"
    if strategy in DDP_START_METHODS:
        from lightning.pytorch.strategies import DDPStrategy

        trainer_kwargs = {**trainer_kwargs, "strategy": DDPStrategy(find_unused_parameters=True,
                                                                    start_method=DDP_START_METHODS[strategy])}
    elif isinstance(strategy, str) and strategy.startswith(("fsdp", "deepspeed")):
        raise ConfigError(f"trainer.strategy: {strategy} is not supported for GANs here (alternating updates of "
                          "sharded networks); accepted: auto, ddp, ddp_spawn, ddp_fork, ddp_notebook")
    return trainer_kwargs


def cluster_environments() -> list[Any]:
    """Under srun, Lightning's SLURM environment without its auto-requeue: SIGUSR1 belongs to interrupts.py (save
    last.ckpt, exit 138) and the batch script requeues (scripts/slurm_train.sbatch). Lightning's own handler would
    save an hpc_ckpt_N.ckpt, which it loads by itself on the next start, past the resume checks, and requeue from
    inside the job."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    launcher = external_launcher()
    if launcher is None or launcher[0] != "srun":
        return []
    try:
        return [SLURMEnvironment(auto_requeue=False)]
    except RuntimeError as error:  # e.g. --ntasks without --ntasks-per-node
        raise ConfigError(f"SLURM: {' '.join(str(error).split())}") from None


def check_sync_batchnorm(config: DictConfig, trainer: L.Trainer) -> None:
    """SyncBatchNorm all-reduces batch statistics on GPU-like devices only; torch raises at the first forward on CPU
    ranks, once per rank. Say it once, before anything starts."""
    device = trainer.strategy.root_device.type
    if config.trainer.get("sync_batchnorm") and trainer.world_size > 1 and device not in ("cuda", "xpu", "hpu"):
        raise ConfigError(f"trainer.sync_batchnorm: SyncBatchNorm needs GPU (cuda/xpu/hpu) ranks, these are {device}; "
                          "set trainer.sync_batchnorm=false or train on GPUs")


def is_launch_rank_zero() -> bool:
    """True in the process that owns the run directory: not a DDP worker started by Lightning, torchrun or srun."""
    return all(int(os.environ.get(name, "0") or 0) == 0 for name in ("RANK", "LOCAL_RANK", "NODE_RANK",
                                                                         "GROUP_RANK", "SLURM_PROCID"))


def leave_process_group(trainer: L.Trainer) -> None:
    """Under DDP, all ranks leave together and close their connections before the interpreter exits: a rank whose
    peers have already exited can otherwise abort (SIGABRT) in the backend's threads at shutdown."""
    import torch.distributed as dist

    if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
        trainer.strategy.barrier("end of training")
        dist.destroy_process_group()


def skip_failing_nvml_check() -> bool:
    """Drop ``PYTORCH_NVML_BASED_CUDA_CHECK`` where NVML cannot be loaded; True if it was dropped.

    Importing Lightning sets it, so that asking whether CUDA is available does not initialise CUDA (fork safety).
    ``torch.optim.Optimizer.step`` asks on every step, and on a machine whose torch has CUDA but which has no NVML
    library (a CPU machine with the default pip wheels) the NVML route tries to load the library on every call, fails,
    and falls back to the CUDA runtime's own count anyway: 57 us a call measured on a 2-core CPU machine, against 1 us
    without the variable, two calls a batch. Without NVML the variable only adds that cost, so it goes. Where NVML
    loads it stays: a GPU run initialises CUDA and torch then caches the count. ``gan-lightning train`` calls it
    at start (dcgan_digits through the CLI: 0.54 ms a batch of NVML loading, in a cProfile of 65 DCGAN-MNIST
    batches); with your own Trainer, call it before ``fit``."""
    import torch

    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") != "1" or not torch.backends.cuda.is_built():
        return False
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]
        return True
    return False
