#!/usr/bin/env bash
# Train on NNODES machines with NPROC processes each, started by torchrun. Run this on every node, with the
# same MASTER_ADDR (node 0's address, reachable from all) and that node's NODE_RANK (0 .. NNODES-1):
#
#   node 0:  MASTER_ADDR=node0 NODE_RANK=0 NNODES=2 NPROC=8 scripts/torchrun_multi_node.sh run.dir=/shared/runs/x
#   node 1:  MASTER_ADDR=node0 NODE_RANK=1 NNODES=2 NPROC=8 scripts/torchrun_multi_node.sh run.dir=/shared/runs/x
#
# Every node needs the same code, the same arguments and data under data.root; run.dir must be on a filesystem all
# nodes share: rank 0 (on node 0) writes it, and on --resume every rank reads checkpoints/last.ckpt from it.
# trainer.devices and trainer.num_nodes follow NPROC and NNODES (set after your overrides; Lightning refuses a run
# whose devices x num_nodes differs from torchrun's world size).
set -euo pipefail

EXPERIMENT="${EXPERIMENT:-dcgan_mnist}"
NNODES="${NNODES:-2}"
NODE_RANK="${NODE_RANK:?set it to the index of this node, 0 .. NNODES-1}"
MASTER_ADDR="${MASTER_ADDR:?set it to the address of the node with NODE_RANK=0}"
MASTER_PORT="${MASTER_PORT:-29500}"
NPROC="${NPROC:-$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)}"  # default: every visible GPU
[[ "${NPROC:-0}" -gt 0 ]] || NPROC=1

# Static rendezvous (fixed node ranks): the node with NODE_RANK=0 holds global rank 0, the one that writes run.dir,
# and serves the rendezvous at MASTER_ADDR:MASTER_PORT.
exec torchrun --nnodes="$NNODES" --node_rank="$NODE_RANK" --nproc_per_node="$NPROC" \
    --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" \
    -m gan_lightning train "$EXPERIMENT" "$@" \
    trainer.devices="$NPROC" trainer.num_nodes="$NNODES" trainer.strategy=ddp
