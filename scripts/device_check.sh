#!/usr/bin/env bash
# One GPU check, five parts, one JSON (issues #11, #23): the CUDA kernel tests, the fused-loss
# benchmark at the production shape, a 3-step bf16 training run of the tiny config on one GPU
# under torchrun (NCCL), chart tasks only, transformers rollouts, and, only where vLLM imports,
# one sleep → sync → wake → score cycle of the trainer's vLLM engine (CUDA graphs on) for the
# trained model and for a tiny Qwen3-VL (scripts/vllm_check.py). Sized for ≤ 8 min on one
# H200 (an estimate: it has never run on a GPU); each part has its own time limit, a failing
# part does not stop the others, and the exit status is non-zero when any part failed.
#
#   bash scripts/device_check.sh          # on a CUDA machine, from the repository root
#   bash scripts/device_check.sh --cpu    # dry run of every CPU-runnable part (1–2 min here, + vLLM's)
#
# Needs: python3 ($PYTHON; else .venv/bin/python when python3 has no torch) with torch,
#   triton, transformers, tokenizers, safetensors, numpy, matplotlib, pillow, tqdm, pytest
#   (pytest-benchmark and pytest-timeout are optional: the kernel tests run with pyproject's
#   addopts replaced) — the H200 image's (torch 2.11, triton 3.6, transformers 5.17,
#   Python 3.12). The project runs from the tree with PYTHONPATH=., not pip-installed (the
#   image's torch and Python are kept as they are). Nothing is downloaded.
# Not needed: Playwright, Chromium, bubblewrap, pandas/scipy/seaborn/squarify, a model
#   hub. Chart tasks never start the browser pool (RenderPool starts each side on first
#   use); without bwrap the chart sandbox's "auto" setting runs its rlimits-only layer.
#   vLLM: the two vllm parts are skipped (the JSON says why) where it does not import.
# Optional: wheels carried in .whl/ are installed into python3's environment first (CUDA mode
#   only), e.g. liger-kernel, the benchmark's Liger baseline (without it Liger's rows are left
#   out); DEVICE_CHECK_MODEL=DIR trains (and runs the vllm part on) that transformers
#   directory (e.g. a carried .cache/warmstart/warmstart-*, whose charts run), else a random
#   tiny Llama built here.
# Output: $DEVICE_CHECK_OUT (default bench/results): device_check_<card>.json with the five
#   parts, loss_<card>.json (the benchmark's own), train_metrics_<card>.jsonl, the vLLM
#   cycles' vllm_check_<card>_{text,vl}.json and the logs;
#   everything is also copied to $OUT when set.
set -uo pipefail
cd "$(dirname "$0")/.."

MODE=cuda
[[ "${1:-}" == "--cpu" ]] && MODE=cpu
PY=${PYTHON:-python3}
# `make setup`'s .venv when python3 has no torch (a CPU machine set up as the README says)
if [[ -z ${PYTHON:-} && -x .venv/bin/python ]] && ! python3 -c "import torch" 2>/dev/null; then
    PY=.venv/bin/python
fi
RESULTS=$(realpath -m "${DEVICE_CHECK_OUT:-bench/results}")
WORK=$(mktemp -d -t device-check-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$RESULTS"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg

# Carried wheels go into the interpreter's own environment (a fresh GPU machine's): the chart
# workers run with PYTHONPATH set to the package alone, and read only inside the allow-list.
if [[ $MODE == cuda ]] && compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile .whl/*.whl \
        || echo "device check: installing .whl/*.whl failed; going on without them" >&2
fi

# Per-part limits (s), each + 5 s to kill: CUDA 90 + 150 + 75 + 55 + 65 + ~20 of set-up and
# summary ≤ 8 min. Estimates, never measured on a GPU: the vLLM parts are one engine start each
# (import, torch.compile of a 2-layer model, CUDA graph capture), the rest is seconds.
if [[ $MODE == cpu ]]; then
    export CUDA_VISIBLE_DEVICES="" TRITON_INTERPRET=1
    LIMIT_TESTS=90 LIMIT_BENCH=150 LIMIT_TRAIN=150 LIMIT_VLLM=240 LIMIT_VLLM_VL=300
    TESTS=(tests/kernels/test_kernel_cuda.py tests/kernels/test_weight_grad_fallback.py)
    BENCH_ARGS=(--quick)
    TRAIN_SET=(train.steps=1 rollout.prompts_per_step=1 rollout.max_new_tokens=48)
else
    unset TRITON_INTERPRET  # compiled kernels on the GPU, not the interpreter
    LIMIT_TESTS=90 LIMIT_BENCH=150 LIMIT_TRAIN=75 LIMIT_VLLM=55 LIMIT_VLLM_VL=65
    # + the sm_90 AOT compile of every kernel variant (no spills) with this image's Triton
    TESTS=(tests/kernels/test_kernel_cuda.py tests/kernels/test_weight_grad_fallback.py
           tests/kernels/test_kernel_aot.py)
    BENCH_ARGS=()
    TRAIN_SET=(train.steps=3 model.dtype=bfloat16)
fi

SLUG=$("$PY" -c "import sys; sys.path.insert(0, 'bench'); from common import device_slug; print(device_slug())") \
    || { echo "device check: $PY with torch does not start" >&2; exit 2; }
echo "== device check [$MODE]: $PY ($("$PY" -c 'import torch; print("torch", torch.__version__)'))"
if [[ $MODE == cuda && $SLUG == cpu ]]; then
    echo "device check: no CUDA GPU visible (torch.cuda.is_available() is False); --cpu is the dry run" >&2
    exit 2
fi
BENCH_JSON="$RESULTS/loss_${SLUG}$([[ $MODE == cpu ]] && echo _quick).json"
METRICS="$RESULTS/train_metrics_${SLUG}.jsonl"
SUMMARY="$RESULTS/device_check_${SLUG}.json"
VLLM_JSON="$RESULTS/vllm_check_${SLUG}_text.json" VLLM_VL_JSON="$RESULTS/vllm_check_${SLUG}_vl.json"
rm -f "$BENCH_JSON" "$METRICS" "$SUMMARY" "$VLLM_JSON" "$VLLM_VL_JSON" \
    "$RESULTS/device_check_${SLUG}"_*.log

# run_part NAME LIMIT CMD...: the command under `timeout`, its log in $RESULTS/device_check_<card>_NAME.log,
# "rc seconds limit" in $WORK/NAME.status; a failure prints the log's tail and carries on.
run_part() {
    local name=$1 limit=$2 start=$SECONDS rc
    shift 2
    echo "== device check [$MODE]: $name (limit ${limit}s)"
    timeout -k 5 "$limit" "$@" >"$RESULTS/device_check_${SLUG}_$name.log" 2>&1
    rc=$?
    echo "$rc $((SECONDS - start)) $limit" >"$WORK/$name.status"
    echo "   exit $rc after $((SECONDS - start))s$([[ $rc == 124 || $rc == 137 ]] && echo ' (timed out)')"
    ((rc == 0)) || tail -n 30 "$RESULTS/device_check_${SLUG}_$name.log" | sed 's/^/   | /'
}

# 1. Kernel tests: the CUDA-only tests (collected and skipped on --cpu). pyproject's addopts
#    are replaced: its --benchmark-disable stops pytest before collection without pytest-benchmark.
run_part kernel_tests "$LIMIT_TESTS" "$PY" -m pytest -q -p no:cacheprovider -o addopts=-ra \
    --junitxml="$WORK/kernel_tests.xml" "${TESTS[@]}"

# 2. The fused-loss benchmark: eager, torch.compile (CUDA), Liger (when importable), ours, and
#    the cuBLAS matmul floor, in one run (bench/loss.py; --quick: tiny shapes on --cpu).
run_part loss_bench "$LIMIT_BENCH" "$PY" bench/loss.py "${BENCH_ARGS[@]}" --out "$BENCH_JSON"

# 3. Training: the tiny config, chart tasks, transformers rollouts, one process under torchrun
#    (NCCL beside gloo on CUDA). The model: $DEVICE_CHECK_MODEL, else a random tiny Llama
#    (head_dim 32: vLLM's CPU attention, in part 4, has no kernel for 16).
MODEL=${DEVICE_CHECK_MODEL:-$WORK/tiny_model}
[[ -n ${DEVICE_CHECK_MODEL:-} ]] || "$PY" -c "import sys; from vsdpo.model.tiny import save_tiny_model
save_tiny_model(sys.argv[1], hidden_size=128)" "$MODEL"
TRAIN_SET+=("model.path=$MODEL" "run_dir=$WORK/run" rollout.engine=transformers
            "tasks.domains=['chart']" train.checkpoint_every=0)
run_part training "$LIMIT_TRAIN" "$PY" -m torch.distributed.run --standalone --nproc_per_node=1 \
    -m vsdpo.train --config configs/tiny.toml "${TRAIN_SET[@]/#/--set=}"
[[ -f $WORK/run/metrics.jsonl ]] && cp "$WORK/run/metrics.jsonl" "$METRICS" && sed 's/^/   /' "$METRICS"

# 4. vLLM, where it imports (the H200 image has none; skipped then, with the reason): one
#    sleep → sync → wake → score cycle of the trainer's engine (sleep mode and CUDA graphs on
#    CUDA) against the trainer's log-probs, for the trained model and for a tiny random
#    Qwen3-VL built here, whose image token counts are compared too (scripts/vllm_check.py).
"$PY" - "$WORK/vllm.skipped" >/dev/null 2>&1 <<'PY'
import sys
try:
    import vllm  # noqa: F401
except Exception as err:  # an install that does not import counts as none
    reason = f"vllm does not import ({type(err).__name__}: {err})"
else:
    from vsdpo.rollout.vllm import cpu_unsupported_reason
    reason = cpu_unsupported_reason()
if reason:
    open(sys.argv[1], "w").write(reason)
PY
if [[ -s $WORK/vllm.skipped ]]; then
    echo "== device check [$MODE]: vllm, vllm_vl skipped: $(cat "$WORK/vllm.skipped")"
else
    run_part vllm "$LIMIT_VLLM" "$PY" scripts/vllm_check.py "$MODEL" --out "$VLLM_JSON"
    "$PY" -c "import sys; from vsdpo.model.tiny_vl import save_tiny_vl_model
save_tiny_vl_model(sys.argv[1], arch='qwen3_vl')" "$WORK/tiny_vl"
    run_part vllm_vl "$LIMIT_VLLM_VL" "$PY" scripts/vllm_check.py "$WORK/tiny_vl" --out "$VLLM_VL_JSON"
fi

# 5. One JSON of the five parts; the last stdout line is that JSON.
"$PY" - "$MODE" "$WORK" "$SUMMARY" "$BENCH_JSON" "$METRICS" "$VLLM_JSON" "$VLLM_VL_JSON" \
    "${TESTS[@]}" <<'PY'
import json, math, sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, "bench")
from common import run_metadata, write_result  # noqa: E402

mode, work, summary, bench_json, metrics, vllm_json, vllm_vl_json, *tests = sys.argv[1:]
work = Path(work)


def status(name):
    path = work / f"{name}.status"
    if not path.exists():
        return {"passed": False, "error": "did not run"}
    rc, seconds, limit = map(int, path.read_text().split())
    return {"exit_code": rc, "seconds": seconds, "limit_s": limit, "timed_out": rc in (124, 137)}


tests_part = status("kernel_tests") | {"files": tests}
xml = work / "kernel_tests.xml"
if xml.exists():
    suite = ET.parse(xml).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    tests_part |= counts
# on CUDA every collected test must run: a skip there means the GPU was not used
tests_part["passed"] = (tests_part.get("exit_code") == 0 and "tests" in tests_part
                        and (mode == "cpu" or tests_part["skipped"] == 0))

bench_part = status("loss_bench") | {"result_file": Path(bench_json).name}
if Path(bench_json).exists():
    bench = json.loads(Path(bench_json).read_text())
    bench_part["runs"] = [{
        "shape": run["shape"], "matmul_tflops": run["matmul_tflops"], "floor_ms": run["floor_ms"],
        "providers": {name: {k: p.get(k) for k in ("median_ms", "p20_ms", "p80_ms", "tflops",
                                                    "peak_extra_mib", "error", "memory_error")
                             if k in p}
                      for name, p in run["providers"].items()},
        "ours_vs_floor": (run["providers"]["ours"].get("median_ms") or math.nan) / run["floor_ms"],
    } for run in bench["runs"]]
    bench_part |= {"exactness": bench["exactness"], "all_targets_met": bench["all_targets_met"],
                   "targets": {k: t["met"] for k, t in bench["targets"].items()}}
bench_part["passed"] = bench_part.get("exit_code") == 0 and "runs" in bench_part  # targets: reported

train_part = status("training") | {"result_file": Path(metrics).name}
if Path(metrics).exists():
    steps = [json.loads(line) for line in Path(metrics).read_text().splitlines() if line]
    train_part["metrics"] = steps
train_part["passed"] = (train_part.get("exit_code") == 0 and bool(train_part.get("metrics"))
                        and all(math.isfinite(s["loss"]) and not s["skipped"]
                                for s in train_part["metrics"]))

def vllm_part(name, result):
    """The cycle's checks and differences; skipped (not failed) where vLLM does not import."""
    skipped = work / "vllm.skipped"
    if skipped.exists():
        return {"skipped": True, "reason": skipped.read_text(), "passed": True}
    part = status(name) | {"result_file": Path(result).name}
    if Path(result).exists():
        check = json.loads(Path(result).read_text())
        part |= {k: check[k] for k in ("architecture", "dtype", "engine", "tolerance",
                                       "logprob_diffs", "image_tokens", "checks")}
    part["passed"] = (part.get("exit_code") == 0 and "checks" in part
                      and all(part["checks"].values()))
    return part


parts = {"kernel_tests": tests_part, "loss_bench": bench_part, "training": train_part,
         "vllm": vllm_part("vllm", vllm_json), "vllm_vl": vllm_part("vllm_vl", vllm_vl_json)}
payload = {"check": "device_check", "mode": mode, "meta": run_metadata(), "parts": parts,
           "all_passed": all(p["passed"] for p in parts.values())}
write_result(payload, Path(summary))
sys.exit(0 if payload["all_passed"] else 1)
PY
rc=$?

if [[ -n ${OUT:-} ]]; then
    mkdir -p "$OUT"
    cp "$SUMMARY" "$RESULTS/device_check_${SLUG}"_*.log "$OUT"/
    cp "$BENCH_JSON" "$METRICS" "$VLLM_JSON" "$VLLM_VL_JSON" "$OUT"/ 2>/dev/null  # absent when their part failed or was skipped
fi
exit $rc
