#!/usr/bin/env bash
# Rebuild the training set of the amfacpose-r18-128x96-coco-lsp recipe from local copies, with left and right
# checked: every set goes through `kanpose label --check-flips` (YOLO11n-pose teacher; people whose arms or legs fit
# the teacher far better with left and right exchanged are re-oriented), and LSP-Extended, all 10,000 images, gets
# its face points filled in by the teacher in the same pass. LSP-Extended trains on its cleaned file; the COCO sets
# on their official labels (see step 4).
#
#   tools/build_training_set.sh [LSP_GIT_DIR] [DATA_ROOT] [OUT]
#
# LSP_GIT_DIR  a local git copy (bare is fine) of the public repository axelcarlier/lsp; its newest commit holds
#              images/im00001.jpg ... im10000.jpg and joints.mat (14 x 3 x 10000). Default
#              /work/.mirror/axelcarlier+lsp/repo. (An older commit holds 128x128 copies: not used.)
# DATA_ROOT    the shared data folder (default ../shared/data): coco-mini, coco-unlabeled and coco-extra, laid out
#              as in its README. Only read.
# OUT          where the cleaned annotation files go (default data/training-set; data/ is git-ignored).
#
# Writes data/lspet-full/ (LSP-Extended extracted: images/ and joints.mat) and, under OUT, one cleaned COCO JSON per
# set (NAME.json), its report (NAME.flips.json: counts and every swapped person) and its log (NAME.log); then prints
# the --train-ann/--train-images/--train-ratio arguments for `kanpose train`. Idempotent: a step whose output exists
# is skipped (delete the file to redo it). Nothing is written into DATA_ROOT, the git copy or tracked files.
#
# Time: the teacher runs on every image once, about 0.1-0.3 s per image on 2 CPU cores: about 45 min for the 10,000
# LSP-Extended images, about 15 min for the COCO sets. Set KANPOSE=... to use another kanpose executable,
# DEVICE=cuda to run the teacher on a GPU, DROP=1 to drop swapped people instead of re-orienting them.
set -euo pipefail
cd "$(dirname "$0")/.."

LSP_GIT="${1:-/work/.mirror/axelcarlier+lsp/repo}"
D="${2:-../shared/data}"
OUT="${3:-data/training-set}"
LSP=data/lspet-full
KANPOSE="${KANPOSE:-kanpose}"
DEVICE="${DEVICE:-cpu}"
TEACHER=yolo:yolo11n-pose.pt
EXTRA=()
if [ "${DROP:-0}" = 1 ]; then
  EXTRA=(--drop-swapped)
fi

for f in coco-mini/annotations/person_keypoints_train2017.json coco-unlabeled/annotations/person_keypoints_train2017.json \
         coco-extra/annotations/person_keypoints_original.json coco-extra/annotations/person_keypoints_stretched.json; do
  if [ ! -f "$D/$f" ]; then
    echo "error: $D/$f not found: give the shared data folder as the second argument" >&2
    exit 2
  fi
done
if ! git --git-dir="$LSP_GIT" rev-parse --verify -q HEAD:joints.mat > /dev/null; then
  echo "error: $LSP_GIT is not a git copy of axelcarlier/lsp (no joints.mat in its newest commit)" >&2
  exit 2
fi
mkdir -p "$OUT"

# 1. LSP-Extended, all 10,000 images, from the newest commit (extracted into a temporary folder, moved when whole)
if [ -f "$LSP/joints.mat" ] && [ -d "$LSP/images" ]; then
  echo "=== extract LSP-Extended: done ($LSP)"
else
  echo "=== extract LSP-Extended from $LSP_GIT ($(git --git-dir="$LSP_GIT" rev-parse --short HEAD))"
  rm -rf "$LSP.partial"
  mkdir -p "$LSP.partial"
  git --git-dir="$LSP_GIT" archive HEAD images joints.mat | tar -x -C "$LSP.partial"
  rm -rf "$LSP"
  mv "$LSP.partial" "$LSP"
fi
n_images=$(find "$LSP/images" -maxdepth 1 -name 'im*.jpg' | wc -l)
n_joints=$("${PYTHON:-python}" -c "import scipy.io, sys; print(scipy.io.loadmat(sys.argv[1])['joints'].shape)" \
           "$LSP/joints.mat")
if [ "$n_images" != 10000 ] || [ "$n_joints" != "(14, 3, 10000)" ]; then
  echo "error: $LSP holds $n_images images and joints $n_joints; expected 10000 and (14, 3, 10000)" >&2
  exit 1
fi
echo "    $n_images images, joints $n_joints"

# check NAME ANN IMAGES [OPTIONS...]: the left/right check of one set into $OUT/NAME.json (+ .flips.json, .log)
check() {
  local name="$1" ann="$2" images="$3"
  shift 3
  if [ -f "$OUT/$name.json" ] && [ -f "$OUT/$name.flips.json" ]; then
    echo "=== check $name: done ($OUT/$name.json)"
    return
  fi
  echo "=== check $name: $ann"
  local start=$SECONDS
  nice -n 19 "$KANPOSE" label "$images" --check-flips "$ann" "$@" --teacher "$TEACHER" --device "$DEVICE" \
    ${EXTRA[@]+"${EXTRA[@]}"} --out "$OUT/$name.json" --report "$OUT/$name.flips.json" 2>&1 | tee "$OUT/$name.log.tmp"
  mv "$OUT/$name.log.tmp" "$OUT/$name.log"
  echo "    $((SECONDS - start)) s"
}

# 2. LSP-Extended: left/right check and the teacher fill-in of the face points in one pass (as `kanpose label
#    lspet/images --fill lspet/joints.mat --kpt-thr 0.5` of the training log, after re-orientation)
check lspet-full "$LSP/joints.mat" "$LSP/images" --fill "$LSP/joints.mat" --kpt-thr 0.5
# 3. the COCO sets of the recipe
check coco-mini-train "$D/coco-mini/annotations/person_keypoints_train2017.json" "$D/coco-mini/train2017"
check coco-unlabeled-train "$D/coco-unlabeled/annotations/person_keypoints_train2017.json" "$D/coco-unlabeled/train2017"
check coco-extra-original "$D/coco-extra/annotations/person_keypoints_original.json" "$D/coco-extra/images/original"
check coco-extra-stretched "$D/coco-extra/annotations/person_keypoints_stretched.json" "$D/coco-extra/images/stretched"

# 4. counts and the arguments for kanpose train (ratios as in the recipe: stretched 0.5, every other set 1).
#    The COCO sets train on their official labels: the few COCO people the check flags (0.5 %, about the rate of the
#    teacher's own left/right errors) were, looked at by eye, mostly people seen from behind whom the teacher takes
#    for frontal, so their cleaned files are kept for the record. COCO_CLEANED=1 prints the cleaned files instead.
echo "=== counts (checked / matched / clear / swapped: arms, legs / dropped)"
for name in coco-mini-train coco-unlabeled-train coco-extra-original coco-extra-stretched lspet-full; do
  "${PYTHON:-python}" - "$OUT/$name.flips.json" "$name" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))["counts"]
print(f"    {sys.argv[2]:22s} {c['checked']:6d} / {c['matched']:6d} / {c['clear']:6d} / {c['swapped']:4d}: "
      f"{c['arms_swapped']} of {c['arms_clear']}, {c['legs_swapped']} of {c['legs_clear']} / {c['dropped']}")
EOF
done
coco_ann() {  # coco_ann NAME OFFICIAL_FILE: the annotation file a COCO set trains on
  if [ "${COCO_CLEANED:-0}" = 1 ]; then echo "$OUT/$1.json"; else echo "$2"; fi
}
echo "=== kanpose train arguments"
echo "--train-ann $(coco_ann coco-mini-train "$D/coco-mini/annotations/person_keypoints_train2017.json")" \
     "--train-images $D/coco-mini/train2017 --train-ratio 1" \
     "--train-ann $(coco_ann coco-unlabeled-train "$D/coco-unlabeled/annotations/person_keypoints_train2017.json")" \
     "--train-images $D/coco-unlabeled/train2017 --train-ratio 1" \
     "--train-ann $(coco_ann coco-extra-original "$D/coco-extra/annotations/person_keypoints_original.json")" \
     "--train-images $D/coco-extra/images/original --train-ratio 1" \
     "--train-ann $(coco_ann coco-extra-stretched "$D/coco-extra/annotations/person_keypoints_stretched.json")" \
     "--train-images $D/coco-extra/images/stretched --train-ratio 0.5" \
     "--train-ann $OUT/lspet-full.json --train-images $LSP/images --train-ratio 1"
