#!/usr/bin/env bash
# Training on a Slurm cluster: tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options].
# GPUS, GPUS_PER_NODE, CPUS_PER_TASK and SRUN_ARGS are read from the environment (see slurm_launch.sh).
exec "$(dirname "$0")/slurm_launch.sh" train.py "$1" "$2" "$3" --work-dir="$4" "${@:5}"
