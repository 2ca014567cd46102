#!/bin/bash
# A Slurm job array running a vmsim sweep (docs/SWEEP.md). Each array task runs the
# shard of the task list its index selects (--shard slurm reads SLURM_ARRAY_TASK_ID,
# SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT), on the cores Slurm gave it, into its
# own file; resubmitting skips what is already there.
#   sbatch --array=0-15 examples/sweep/slurm.sh examples/sweep/tlb.ini
#   vmsim sweep merge results/*.jsonl > table.csv
#SBATCH --job-name=vmsim-sweep
#SBATCH --cpus-per-task=4
#SBATCH --time=01:00:00
set -euo pipefail
spec=${1:?usage: sbatch --array=0-N slurm.sh SPEC}
mkdir -p results
exec vmsim sweep "$spec" --shard slurm -j "${SLURM_CPUS_PER_TASK:-1}" \
    -o "results/shard-${SLURM_ARRAY_TASK_ID}.jsonl"
