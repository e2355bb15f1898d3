#!/usr/bin/env bash
# One prepared pass over genood's CUDA paths on a GPU machine, short enough for a lent GPU:
#   1. the CUDA tests (tests/gpu: every model family, fp32/bf16/fp16 training, resume, scoring,
#      detectors) and the precision tests;
#   2. benchmarks/throughput.py on the GPU, genood bf16 against normflows fp32, with the peak
#      memory of training and scoring alone;
#   3. the bf16 tolerance after training: the CPU FashionMNIST Glow config trained for the same
#      steps in fp32 and in bf16 (same seed), then both scored in fp32 on FashionMNIST test and
#      MNIST: the bits/dim should agree within 0.01;
#   4. the benchmark again with genood in fp32, and at paper scale in bf16;
#   optional parts: bench-large (batch 512) and compile (torch.compile).
# Most important first: a machine lent for minutes may stop it part-way. GPU_CHECK_PARTS picks
# parts (default "tests bench accuracy bench-more"; also "bench-large", "compile").
# Usage: benchmarks/gpu_check.sh OUT_DIR TRAIN_NPZ TEST_NPZ OOD_NPZ [STEPS]
# (npz files with uint8 `images`, e.g. written from `genood.data.load`). Everything is logged to
# OUT_DIR/gpu_check.log; each step has its own time limit so that one slow step cannot eat the
# others' time. Needs normflows for step 2 (`pip install -e '.[bench]'`).
set -u
out=$1 train=$2 test=$3 ood=$4 steps=${5:-1000}
py=${PYTHON:-python3}
mkdir -p "$out"
log=$out/gpu_check.log
export PYTHONUNBUFFERED=1
runs=$(mktemp -d)

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    echo "=== $name: $*" | tee -a "$log"
    timeout "$limit" "$@" >>"$log" 2>&1
    rc=$?
    echo "=== $name: rc=$rc in $(($(date +%s) - start)) s" | tee -a "$log"
}

nvidia-smi -L | tee -a "$log"
$py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$log"

part() { [[ " ${GPU_CHECK_PARTS:-tests bench accuracy bench-more} " == *" $1 "* ]]; }

if part tests; then
    step tests 120 $py -m pytest -q -p no:cacheprovider -o addopts="--import-mode=importlib" \
        tests/gpu tests/train/test_precision.py
fi
if part bench; then
    step bench-bf16 100 $py benchmarks/throughput.py --device cuda --precision bf16 --rounds 12 \
        --memory --json
fi
if part accuracy; then
    for precision in fp32 bf16; do
        step "train-$precision" 150 $py -m genood train --config configs/fashion-mnist-cpu.toml \
            --out "$runs/$precision" --no-progress --device cuda --precision "$precision" \
            --set "data.train=npz:$train" "data.val=npz:$test" train.steps="$steps" \
            train.time_budget_s=0 train.eval_every=0 train.sample_every=-1 \
            train.checkpoint_every="$steps" train.threads=8
        for spec in "npz:$test" "npz:$ood"; do
            step "score-$precision" 45 $py -m genood score --run "$runs/$precision" \
                --dataset "$spec" --device cuda --no-save --no-progress
        done
    done
    $py - "$runs" <<'EOF' | tee -a "$log"
import json, statistics, sys
from pathlib import Path
for metrics in sorted(Path(sys.argv[1]).glob("*/metrics.jsonl")):
    train = [r for r in map(json.loads, metrics.read_text().splitlines()) if r["event"] == "train"]
    if train:
        speed = statistics.median(r["img_per_s"] for r in train[len(train) // 4 :])
        print(f"{metrics.parent.name}: step {train[-1]['step']}, loss {train[-1]['loss_bpd']:.4f} "
              f"bits/dim, median {speed:.0f} images/s")
EOF
fi
if part bench-more; then
    step bench-fp32 60 $py benchmarks/throughput.py --device cuda --precision fp32 --rounds 12 \
        --json
    step bench-paper-bf16 90 $py benchmarks/throughput.py --device cuda --precision bf16 \
        --arch paper-fashion --rounds 6 --json
fi
if part bench-large; then  # past the launch-bound regime of batch 64
    for precision in fp32 bf16; do
        step "bench-$precision-b512" 60 $py benchmarks/throughput.py --device cuda \
            --precision "$precision" --batch 512 --score-batch 2048 --rounds 6 --json
    done
fi
if part compile; then
    step bench-bf16-compiled 180 $py benchmarks/throughput.py --device cuda --precision bf16 \
        --compile --rounds 12 --json
fi
echo "=== finished" | tee -a "$log"
