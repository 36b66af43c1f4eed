# Cluster-specific settings for est's Slurm jobs: the ONE place to adapt to a site. Sourced by jobs/launch (inside
# a job) and by jobs/chain and jobs/submit-study (before sbatch). Every value can be overridden by setting the
# environment variable of the same name. Before a plain `sbatch jobs/train.sbatch ...`, run `source jobs/site.sh`
# so that the account, partition and GPUs below reach sbatch.
est_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export EST_JOBS_DIR=$est_repo/jobs  # lets a batch script (Slurm runs a copy of it) find jobs/launch

# ---- edit here ------------------------------------------------------------------------------------------------
: "${EST_ACCOUNT:=}"             # sbatch --account (empty: none, e.g. a local Slurm without accounting)
: "${EST_PARTITION:=}"           # sbatch --partition (empty: the cluster's default)
: "${EST_GPUS_PER_NODE:=}"       # sbatch --gpus-per-node (empty: no GPUs requested)
: "${EST_RANKS_PER_NODE:=1}"     # MPI ranks per node (one per GPU on a GPU cluster)
: "${EST_CPUS_PER_RANK:=1}"      # cores per rank; est's GEMM threads (runtime.threads)
: "${EST_MODULES:=}"             # environment modules to load, space-separated (e.g. "gcc/12 openmpi/4.1 hdf5")
: "${EST_SPACK_ENV:=}"           # a Spack environment to activate (a name or a directory; see spack.yaml)
: "${EST_LAUNCHER:=srun}"        # srun | mpirun
: "${EST_BIN:=$est_repo/build/bin/est}"
: "${EST_REQUEUE:=1}"            # 1: a job stopped for its time limit requeues itself; 0: it exits 75 (jobs/chain)
# ---------------------------------------------------------------------------------------------------------------

# Only what is set reaches sbatch, so a Slurm without accounts or partitions names works unchanged.
[[ -n $EST_ACCOUNT ]] && export SBATCH_ACCOUNT=$EST_ACCOUNT
[[ -n $EST_PARTITION ]] && export SBATCH_PARTITION=$EST_PARTITION
[[ -n $EST_GPUS_PER_NODE ]] && export SBATCH_GPUS_PER_NODE=$EST_GPUS_PER_NODE
# sbatch options that have no SBATCH_* variable; jobs/chain passes them on its command line.
est_sbatch_shape=(--ntasks-per-node="$EST_RANKS_PER_NODE" --cpus-per-task="$EST_CPUS_PER_RANK")

# The software environment; only inside a job (jobs/launch), where est runs.
est_load_environment() {
  if [[ -n $EST_MODULES ]]; then
    # shellcheck disable=SC2086
    module load $EST_MODULES
  fi
  if [[ -n $EST_SPACK_ENV ]]; then
    spack env activate "$EST_SPACK_ENV"
  fi
}
