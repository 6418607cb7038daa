#!/bin/bash
# The GPU check of the reference recipes: every training config on CUDA, trained in fp32 and with
# bf16 autocast, then all of them scored on CUDA in fp32 and bf16 (README, "On a GPU").
# Run from the repository root on a CUDA machine with the project installed:
#   bash benchmarks/gpu_check.sh                 # every training/*.yaml
#   CONFIGS="training/demo-bt.yaml" bash benchmarks/gpu_check.sh
# Work goes to $WORK (default /tmp/mosrm-gpu-check); the summary is printed and saved there.
set -u
WORK=${WORK:-/tmp/mosrm-gpu-check}
export MOSRM_HOME=${MOSRM_HOME:-$WORK/home} PYTHONUNBUFFERED=1
M="python3 -m benchmark.cli"
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
mkdir -p "$WORK"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)"
s=$(date +%s%N); $M prepare demo --quiet 2>&1 | tail -n 1; echo "TIME prepare demo: $(ms "$s") ms"
subs=""
for cfg in ${CONFIGS:-training/*.yaml}; do
  base=$(basename "$cfg" .yaml)
  for v in fp32 bf16; do
    name=gpu-$base-$v
    sed -e "s/^name: .*/name: $name/" "$cfg" > "$WORK/$name.yaml"
    echo "device: cuda" >> "$WORK/$name.yaml"
    if [ "$v" = bf16 ]; then echo "bf16: true" >> "$WORK/$name.yaml"; fi
    s=$(date +%s%N)
    $M train "$WORK/$name.yaml" --out "$WORK/sub/$name" --quiet > "$WORK/$name.log" 2>&1
    echo "TIME train $base $v on cuda: $(ms "$s") ms (rc $?)"
    for f in "$WORK/sub/$name"*/; do
      if [ -f "$f/submission.yaml" ]; then subs="$subs $f"; grep -h "Best dev\|Wall" "$f/card.md"; fi
    done
  done
done
for v in fp32 bf16; do
  flag=""; if [ "$v" = bf16 ]; then flag="--bf16"; fi
  s=$(date +%s%N)
  # shellcheck disable=SC2086
  $M evaluate --task demo --device cuda $flag --quiet --results "$WORK/res-$v" $subs > "$WORK/eval-$v.log" 2>&1
  echo "TIME evaluate all on cuda $v: $(ms "$s") ms (rc $?)"
done
WORK="$WORK" python3 - <<'PY' | tee "$WORK/summary.txt"
import glob, json, os
for f in sorted(glob.glob(os.environ["WORK"] + "/res-*/*/demo.json")):
    r = json.load(open(f))
    o = r["metrics"]["overall"]
    d = r.get("diagnostics") or {}
    print(f.split("/")[-3], r["submission"], r["preprocessing"].get("autocast", "fp32"),
          f"{100 * o['accuracy']:.2f} [{100 * o['ci_low']:.1f}, {100 * o['ci_high']:.1f}] n={o['n']}",
          {k: d.get(k) for k in ("position_consistency", "first_position_bias", "cycle_rate") if k in d})
PY
