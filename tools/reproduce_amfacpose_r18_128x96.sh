#!/usr/bin/env bash
# Reproduce weights/amfacpose-r18-128x96-coco-lsp.safetensors: the 15 shipped phases of its training, in order
# (the full log, with every phase's figures, is weights/amfacpose-r18-128x96-coco-lsp-training.md).
#
#   tools/reproduce_amfacpose_r18_128x96.sh [DATA_ROOT] [NAME]
#
# DATA_ROOT  the shared data folder (default ../shared/data, relative to the repository root): coco-mini,
#            coco-unlabeled, coco-extra and lspet, laid out as in its README.
# NAME       the file stem the shipped results are written under in weights/ (default
#            amfacpose-r18-128x96-coco-lsp-repro, so the shipped file is never overwritten).
#
# KANPOSE_REPRO_CHECK=1 runs nothing: each phase's `kanpose train` command is run with --show-config, which parses
# every option and --set key and prints the effective config, and the labelling and shipping steps are printed only.
#
# The script runs from the repository root, about 21 hours on 2 CPU cores (one GPU: far less). It is resumable: each
# step leaves its output under runs/reproduce/ and is skipped when that output exists; a phase that was killed
# continues from its last saved state (`kanpose train --resume`). Phases 1-8 run one after the other from each
# other's last epoch; then phases 1-8 are shipped (tools/ship_weights.py: fp16 file, accuracy on coco-mini val2017,
# curves) and every later phase starts from the file shipped after the phase before it, as the original did.
# tools/ship_weights.py evaluates on ../shared/data/coco-mini (its own fixed path), whatever DATA_ROOT is.
#
# What differs from the original runs: phase 1 was stopped by hand after 6 of its 7 planned epochs (its cosine cycle
# was planned for 7); this script lets it finish all 7. Later phases set their seed, warmup and learning rate
# explicitly, but take every other setting from the recipe defaults of the kanpose version that runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

D="${1:-../shared/data}"
NAME="${2:-amfacpose-r18-128x96-coco-lsp-repro}"
CHECK="${KANPOSE_REPRO_CHECK:-0}"
OUT=runs/reproduce
KANPOSE="${KANPOSE:-kanpose}"
PYTHON="${PYTHON:-python}"
MODEL=amfacpose-r18-128x96
NOTE="research use only (LSP-Extended)"

for f in coco-mini/annotations/person_keypoints_train2017.json coco-unlabeled/annotations/person_keypoints_train2017.json \
         coco-extra/annotations/person_keypoints_original.json coco-extra/annotations/person_keypoints_stretched.json \
         coco-mini/annotations/person_keypoints_val2017.json lspet/joints.mat; do
  if [ ! -f "$D/$f" ]; then
    echo "error: $D/$f not found: give the shared data folder as the first argument" >&2
    exit 2
  fi
done
mkdir -p "$OUT"

COCO=(--train-ann "$D/coco-mini/annotations/person_keypoints_train2017.json" --train-images "$D/coco-mini/train2017"
      --train-ann "$D/coco-unlabeled/annotations/person_keypoints_train2017.json"
      --train-images "$D/coco-unlabeled/train2017"
      --train-ann "$D/coco-extra/annotations/person_keypoints_original.json"
      --train-images "$D/coco-extra/images/original"
      --train-ann "$D/coco-extra/annotations/person_keypoints_stretched.json"
      --train-images "$D/coco-extra/images/stretched")
LSP_ANN="$OUT/lspet_filled.json"
if [ "$CHECK" = 1 ] && [ ! -f "$LSP_ANN" ]; then
  LSP_ANN="$D/lspet/joints.mat"  # checking only: the raw joints (no face points) stand in for the labelled file
fi
LSP=(--train-ann "$LSP_ANN" --train-images "$D/lspet/images"
     --train-ratio 1 --train-ratio 1 --train-ratio 1 --train-ratio 0.5 --train-ratio 1)
VAL=(--val-ann "$D/coco-mini/annotations/person_keypoints_val2017.json" --val-images "$D/coco-mini/val2017")
SET=(--set sched.type=cosine --set sched.min_lr_ratio=0.05 --set channels_last=true --batch 32 --val-every 1)
EMA=(--set ema.enabled=true --set ema.momentum=0.0005 --set ema.gamma=300)
MILD=(--set aug.shift_prob=0 --set 'aug.scale_range=[0.75,1.25]')

# train N ARGS...: phase N into $OUT/expN (run in $OUT/phaseN/exp1, moved to $OUT/expN once it has finished)
train() {
  local n="$1"; shift
  if [ -d "$OUT/exp$n" ]; then
    echo "=== phase $n: done ($OUT/exp$n)"
    return
  fi
  if [ "$CHECK" = 1 ]; then
    echo "=== phase $n: checking the command line (--show-config)"
    "$KANPOSE" train --model "$MODEL" "$@" --project "$OUT/phase$n" --show-config > /dev/null
    return
  fi
  if [ -f "$OUT/phase$n/exp1/state/last.pt" ]; then
    echo "=== phase $n: resuming $OUT/phase$n/exp1"
    "$KANPOSE" train --resume "$OUT/phase$n/exp1" --project "$OUT/phase$n"
  else
    echo "=== phase $n: training"
    rm -rf "$OUT/phase$n"
    "$KANPOSE" train --model "$MODEL" "$@" --project "$OUT/phase$n"
  fi
  mv "$OUT/phase$n/exp1" "$OUT/exp$n"
  rmdir "$OUT/phase$n"
}

# ship N ARGS...: tools/ship_weights.py after phase N; the shipped file is kept as $OUT/shipped-phaseN.safetensors
ship() {
  local n="$1"; shift
  local kept="$OUT/shipped-phase$n.safetensors"
  if [ -f "$kept" ]; then
    echo "=== ship after phase $n: done ($kept)"
    return
  fi
  echo "=== ship after phase $n: weights/$NAME.safetensors"
  if [ "$CHECK" = 1 ]; then
    echo "$PYTHON tools/ship_weights.py --name $NAME $* --checkpoint last --note '$NOTE'"
    return
  fi
  "$PYTHON" tools/ship_weights.py --name "$NAME" "$@" --checkpoint last --note "$NOTE"
  cp "weights/$NAME.safetensors" "$kept.tmp"
  mv "$kept.tmp" "$kept"
}

last() { echo "$OUT/exp$1/weights/last.safetensors"; }
shipped() { echo "$OUT/shipped-phase$1.safetensors"; }

# LSP-Extended's face points, filled in by the YOLO11n-pose teacher (used from phase 2 on)
if [ -f "$OUT/lspet_filled.json" ]; then
  echo "=== label LSP-Extended: done ($OUT/lspet_filled.json)"
elif [ "$CHECK" = 1 ]; then
  echo "=== label LSP-Extended: $KANPOSE label $D/lspet/images --fill $D/lspet/joints.mat ..."
else
  echo "=== label LSP-Extended"
  "$KANPOSE" label "$D/lspet/images" --fill "$D/lspet/joints.mat" --teacher yolo:yolo11n-pose.pt --kpt-thr 0.5 \
    --out "$OUT/lspet_filled.json"
fi

# phase 1: the four COCO sets, one-hot SimCC labels (from phase 2 on: Gaussian labels, the model's default)
train 1 "${COCO[@]}" "${VAL[@]}" "${SET[@]}" --lr 1e-3 --seed 0 --epochs 7 --set sched.warmup_iters=200 \
  --set model_overrides.simcc_label=smoothed_onehot
# phases 2-8: all five sets, each from the last epoch of the phase before
train 2 --init "$(last 1)" "${COCO[@]}" "${LSP[@]}" "${VAL[@]}" "${SET[@]}" --lr 1e-3 --seed 0 --epochs 5 \
  --set sched.warmup_iters=100
train 3 --init "$(last 2)" "${COCO[@]}" "${LSP[@]}" "${VAL[@]}" "${SET[@]}" --lr 7e-4 --seed 0 --epochs 6 \
  --set sched.warmup_iters=50
train 4 --init "$(last 3)" "${COCO[@]}" "${LSP[@]}" "${VAL[@]}" "${SET[@]}" --lr 5e-4 --seed 0 --epochs 7 \
  --set sched.warmup_iters=50
train 5 --init "$(last 4)" "${COCO[@]}" "${LSP[@]}" "${VAL[@]}" "${SET[@]}" --lr 4e-4 --seed 0 --epochs 5 \
  --set sched.warmup_iters=50
train 6 --init "$(last 5)" "${COCO[@]}" "${LSP[@]}" "${VAL[@]}" "${SET[@]}" --lr 5e-4 --seed 0 --epochs 15 \
  --set sched.warmup_iters=50
train 7 --init "$(last 6)" "${COCO[@]}" "${LSP[@]}" "${VAL[@]}" "${SET[@]}" --lr 5e-4 --seed 1 --epochs 13 \
  --set sched.warmup_iters=50
train 8 --init "$(last 7)" "${COCO[@]}" "${LSP[@]}" "${VAL[@]}" "${SET[@]}" --lr 4e-4 --seed 2 --epochs 12 \
  --set sched.warmup_iters=50
ship 8 --run "$OUT/exp1" --run "$OUT/exp2" --run "$OUT/exp3" --run "$OUT/exp4" --run "$OUT/exp5" --run "$OUT/exp6" \
  --run "$OUT/exp7" --run "$OUT/exp8"
# phases 9-16: each from the file shipped after the phase before
train 9 --init "$(shipped 8)" "${COCO[@]}" "${LSP[@]}" "${VAL[@]}" "${SET[@]}" --lr 4e-4 --seed 3 --epochs 11 \
  --set sched.warmup_iters=50
ship 9 --previous "$(shipped 8)" --run "$OUT/exp9"
train 10 --init "$(shipped 9)" "${COCO[@]}" "${LSP[@]}" "${VAL[@]}" "${SET[@]}" --lr 3e-4 --seed 4 --epochs 14 \
  --set sched.warmup_iters=50
ship 10 --previous "$(shipped 9)" --run "$OUT/exp10"
# from phase 11 on: an EMA of the weights (validated and exported)
train 11 --init "$(shipped 10)" "${COCO[@]}" "${LSP[@]}" "${VAL[@]}" "${SET[@]}" --lr 3e-4 --seed 5 --epochs 15 \
  --set sched.warmup_iters=50 "${EMA[@]}"
ship 11 --previous "$(shipped 10)" --run "$OUT/exp11"
train 12 --init "$(shipped 11)" "${COCO[@]}" "${LSP[@]}" "${VAL[@]}" "${SET[@]}" --lr 3e-4 --seed 6 --epochs 22 \
  --set sched.warmup_iters=50 "${EMA[@]}"
ship 12 --previous "$(shipped 11)" --run "$OUT/exp12"
# from phase 13 on: milder augmentation (no shift, scale [0.75, 1.25])
train 13 --init "$(shipped 12)" "${COCO[@]}" "${LSP[@]}" "${VAL[@]}" "${SET[@]}" --lr 3e-4 --seed 7 --epochs 20 \
  --set sched.warmup_iters=50 "${EMA[@]}" "${MILD[@]}"
ship 13 --previous "$(shipped 12)" --run "$OUT/exp13"
# phase 14 (--lr 1.5e-4 --epochs 8 --seed 8 from the phase-13 file) was run and not shipped: skipped here
train 15 --init "$(shipped 13)" "${COCO[@]}" "${LSP[@]}" "${VAL[@]}" "${SET[@]}" --lr 3e-4 --seed 8 --epochs 28 \
  --set sched.warmup_iters=50 "${EMA[@]}" "${MILD[@]}"
ship 15 --previous "$(shipped 13)" --run "$OUT/exp15"
train 16 --init "$(shipped 15)" "${COCO[@]}" "${LSP[@]}" "${VAL[@]}" "${SET[@]}" --lr 3e-4 --seed 9 --epochs 32 \
  --set sched.warmup_iters=50 "${EMA[@]}" "${MILD[@]}"
ship 16 --previous "$(shipped 15)" --run "$OUT/exp16"
# phase 17 (phase 16's command with --seed 10, from the phase-16 file) was run and not shipped: skipped here
echo "=== all phases done: weights/$NAME.safetensors (a copy of each shipped step in $OUT/)"
