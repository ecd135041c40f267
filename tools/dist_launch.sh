#!/usr/bin/env bash
# One process per device for a tool of this folder: tools/dist_launch.sh TOOL NPROC [tool arguments].
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
TOOL=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

python -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$(dirname "$0")/$TOOL" "${@:3}" --launcher pytorch
