#!/usr/bin/env bash
# Data-parallel training on one machine: tools/dist_train.sh CONFIG GPUS [train.py options].
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node (see dist_launch.sh).
exec "$(dirname "$0")/dist_launch.sh" train.py "$2" "$1" "${@:3}"
