#!/usr/bin/env bash
# Train on one machine with NPROC processes (one per GPU) started by torchrun.
#
#   EXPERIMENT=dcgan_mnist NPROC=4 scripts/torchrun_single_node.sh [key=value ...] [--resume]
#
# Lightning sees torchrun's variables (TorchElasticEnvironment) and takes ranks and the world size from them;
# trainer.devices must equal the processes per node and trainer.num_nodes the nodes, or it refuses the run. So
# this script sets both from NPROC, after your overrides: choose the process count with NPROC, not with keys.
set -euo pipefail

EXPERIMENT="${EXPERIMENT:-dcgan_mnist}"
NPROC="${NPROC:-$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)}"  # default: every visible GPU
[[ "${NPROC:-0}" -gt 0 ]] || NPROC=1  # no GPU: one process

# --standalone: a local rendezvous on a free port, nothing to configure on one machine.
exec torchrun --standalone --nproc_per_node="$NPROC" -m gan_lightning train "$EXPERIMENT" "$@" \
    trainer.devices="$NPROC" trainer.num_nodes=1 trainer.strategy=ddp
