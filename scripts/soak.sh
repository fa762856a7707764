#!/usr/bin/env bash
# Soak test: run the 2-rank tiny training N times, then the vLLM tensor-parallel training test
# N times, and count the runs that died (non-zero exit) or hung (past SOAK_TIMEOUT seconds).
#
#   scripts/soak.sh 20                     # both loops, 20 runs each
#   SOAK_LOOPS=train scripts/soak.sh 5     # one loop only (train | vllm)
#
# The warm-started model is built (or found) once, before the loops. A hung run's processes
# are dumped with gdb (when installed) before they are killed; every run's log and the dumps
# stay under $SOAK_DIR (default runs/soak).
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:?usage: scripts/soak.sh N}
steps=${SOAK_STEPS:-20}
limit=${SOAK_TIMEOUT:-600}
out=${SOAK_DIR:-runs/soak}
mkdir -p "$out"
export OMP_NUM_THREADS=1 PYTHONFAULTHANDLER=1

descendants() {
    local child
    for child in $(ps -o pid= --ppid "$1"); do echo "$child"; descendants "$child"; done
}

# Runs "$@" with its output in $1; on a hang, dumps every process of the run, then kills them.
run_watched() {
    local log=$1; shift
    "$@" >"$log" 2>&1 &
    local pid=$! waited=0
    while kill -0 "$pid" 2>/dev/null && ((waited < limit)); do sleep 1; ((waited++)); done
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid"
        return
    fi
    echo "HUNG after ${limit}s" >>"$log"
    local procs
    procs=$(descendants "$pid")
    if command -v gdb >/dev/null; then
        for p in $procs; do gdb -p "$p" -batch -ex "thread apply all bt" >"$log.gdb.$p" 2>&1; done
    fi
    kill -9 "$pid" $procs 2>/dev/null
    wait "$pid"
    return 124
}

loop() {
    local name=$1; shift
    local died=0 hung=0 rc t0
    for i in $(seq 1 "$runs"); do
        t0=$SECONDS
        run_watched "$out/$name-$i.log" "$@" "$i"
        rc=$?
        if ((rc == 124)); then ((hung++)); elif ((rc != 0)); then ((died++)); fi
        echo "soak $name $i/$runs: rc=$rc in $((SECONDS - t0)) s" \
             "$(grep -a -m1 -h -E 'malloc|Segmentation|Aborted|Fatal Python|Error' "$out/$name-$i.log")"
    done
    echo "soak $name: $runs runs, $died died, $hung hung"
}

train_run() {
    rm -rf "$out/run-$1"
    .venv/bin/torchrun --standalone --nproc_per_node=2 -m vsdpo.train --config configs/tiny.toml \
        --set "run_dir='$out/run-$1'" --set "train.steps=$steps" --set "model.path='$model'"
}

vllm_run() {
    .venv/bin/python -m pytest -q -p no:cacheprovider \
        "tests/train/test_vllm_training.py::test_two_ranks_train_with_vllm_rollouts_and_stay_in_sync[2]"
}

for which in ${SOAK_LOOPS:-train vllm}; do
    case $which in
        train) model=$(.venv/bin/python -m vsdpo.cli warmstart | tail -1) || exit 1
               loop train train_run ;;
        vllm) loop vllm vllm_run ;;
        *) echo "soak: unknown loop '$which' (train | vllm)" >&2; exit 2 ;;
    esac
done
