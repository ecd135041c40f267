#!/usr/bin/env bash
# Testing on a Slurm cluster: tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py options].
# GPUS, GPUS_PER_NODE, CPUS_PER_TASK and SRUN_ARGS are read from the environment (see slurm_launch.sh).
exec "$(dirname "$0")/slurm_launch.sh" test.py "$1" "$2" "$3" "$4" "${@:5}"
