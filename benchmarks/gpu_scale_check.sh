#!/bin/bash
# Issue 12's device check: P2 on the device (the scorer vs the reference CNN's pure forward, fp32
# and bf16 autocast), and `mosrm evaluate --nproc N` (one torchrun rank per GPU) against one
# process, each from a cold score cache, with wall times; results, predictions and triplets must
# be byte-identical. Run from the repository root with the project installed:
#   bash benchmarks/gpu_scale_check.sh                          # CUDA, every visible GPU
#   DEVICE=cpu NPROC=2 CONFIGS=training/demo-bt.yaml bash benchmarks/gpu_scale_check.sh
#                                                               # the same steps on the CPU
# Work goes to $WORK (default /tmp/mosrm-scale-check); the summary is printed and saved there.
# Exit status: 0 when every sharded result matches its one-process twin.
set -u
WORK=${WORK:-/tmp/mosrm-scale-check}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
export MOSRM_HOME=${MOSRM_HOME:-$WORK/home} PYTHONUNBUFFERED=1
M="$PY -m benchmark.cli"
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
mkdir -p "$WORK"
if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  NPROC=${NPROC:-$($PY -c "import torch; print(torch.cuda.device_count())")}
  MODES=${MODES:-"fp32 bf16"}
else
  NPROC=${NPROC:-2}
  MODES=${MODES:-fp32}
fi
$PY -c "import os, torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'gpus', torch.cuda.device_count(), 'cpus', os.cpu_count())"
echo "device $DEVICE, modes $MODES, nproc 1 vs $NPROC"
s=$(date +%s%N); $M prepare demo --quiet 2>&1 | tail -n 1; echo "TIME prepare demo: $(ms "$s") ms"

# P2 on the device: the scorer's overhead around the model (reported; asserted only on the CPU)
for v in $MODES; do
  bf=""; if [ "$v" = bf16 ]; then bf=1; fi
  MOSRM_BENCH_DEVICE=$DEVICE MOSRM_BENCH_BF16=$bf $PY -m pytest -q -s -p no:cacheprovider \
    benchmarks/bench_scorer_ratios.py -k p2_scorer --benchmark-enable --benchmark-only 2>&1 |
    grep "^P2 " | sed "s/^/P2 $v: /"
done

# the reference models trained on the device: a scalar one and a pairwise judge
subs="shortcut-loudness"
for cfg in ${CONFIGS:-training/demo-bt.yaml training/demo-grpo.yaml}; do
  base=scale-$(basename "$cfg" .yaml)
  sed -e "s/^name: .*/name: $base/" "$cfg" > "$WORK/$base.yaml"
  echo "device: $DEVICE" >> "$WORK/$base.yaml"
  s=$(date +%s%N)
  $M train "$WORK/$base.yaml" --out "$WORK/sub/$base" --quiet > "$WORK/$base.log" 2>&1
  echo "TIME train $base on $DEVICE: $(ms "$s") ms (rc $?)"
  for f in "$WORK/sub/$base"*/; do
    if [ -f "$f/submission.yaml" ]; then subs="$subs $f"; fi
  done
done

# every submission scored by one process and by $NPROC ranks, cold each time
for v in $MODES; do
  flag=""; if [ "$v" = bf16 ]; then flag="--bf16"; fi
  for run in one ranks; do
    rm -f "$MOSRM_HOME"/scores.sqlite*
    rm -rf "$WORK/res-$v-$run"
    # one process, then torchrun's ranks (what `--nproc N` launches; called directly, so that
    # one GPU still runs the distributed path, as one rank)
    launch="$M" what="one process"
    if [ "$run" = ranks ]; then
      launch="$PY -m torch.distributed.run --standalone --nproc-per-node $NPROC -m benchmark.cli"
      what="$NPROC torchrun rank(s)"
    fi
    s=$(date +%s%N)
    # shellcheck disable=SC2086
    $launch evaluate --task demo --device "$DEVICE" $flag --quiet \
      --results "$WORK/res-$v-$run" $subs > "$WORK/eval-$v-$run.log" 2>&1
    echo "TIME evaluate ($v, $what, cold cache) on $DEVICE: $(ms "$s") ms (rc $?)"
  done
done

WORK="$WORK" NPROC="$NPROC" MODES="$MODES" $PY - <<'PY' | tee "$WORK/summary.txt"
import json, os, pathlib, sys
work, n = pathlib.Path(os.environ["WORK"]), os.environ["NPROC"]
bad = 0
for mode in os.environ["MODES"].split():
    one, many = work / f"res-{mode}-one", work / f"res-{mode}-ranks"
    files = sorted(p.relative_to(one) for p in one.rglob("demo.*") if ".run." not in p.name)
    if not files:
        print(f"{mode}: no results in {one}"); bad += 1
    for rel in files:
        same = (many / rel).is_file() and (many / rel).read_bytes() == (one / rel).read_bytes()
        bad += not same
        line = f"{mode} {rel}: one process vs {n} rank(s) {'identical' if same else 'DIFFERENT'}"
        if rel.name == "demo.json":
            o = json.loads((one / rel).read_text())["metrics"]["overall"]
            line += f"; accuracy {100 * o['accuracy']:.2f} [{100 * o['ci_low']:.1f}, {100 * o['ci_high']:.1f}]"
        print(line)
print("ALL IDENTICAL" if not bad else f"{bad} DIFFERENCES")
sys.exit(1 if bad else 0)
PY
