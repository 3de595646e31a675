#!/usr/bin/env bash
# Put a released dataset's annotation files where the configs expect them, and check them.
#
#   data/prepare.sh DATASET [--from DIR] [--download]
#   DATASET: clotho_moment | unav100-subset | tut2017 | castella | all
#
# Without options it reports, for each annotation file, whether it is in data/DATASET/ and
# whether its md5 matches data/checksums.md5, and prints where to get what is missing (the
# annotation files, the released features and the audio). --from DIR copies missing files from a
# folder (a Lighthouse checkout's data/, or a flat folder of *_release.jsonl files); --download
# fetches missing annotation files from the Lighthouse repository (curl or wget). Features and
# audio are archives of several GB: the script says where they go but never downloads them.
# Exit status: 0 all present and matching, 1 something missing, 2 a checksum mismatch or misuse.
set -euo pipefail

DATA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$DATA_DIR")
LIGHTHOUSE_RAW=${LIGHTHOUSE_RAW:-https://raw.githubusercontent.com/line/lighthouse/main/data}
AMR_FEATURES=https://zenodo.org/records/13806234
CLOTHO_MOMENT_WAVS=https://zenodo.org/records/13836117
CASTELLA_PAGE=https://h-munakata.github.io/CASTELLA-demo/

usage() { sed -n '4,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,3\}//' >&2; exit 2; }

# dataset folder -> annotation files; config dataset name (features/<name>/)
files_of() {
  case $1 in
    clotho_moment) echo "clotho_moment_train_release.jsonl clotho_moment_val_release.jsonl clotho_moment_test_release.jsonl" ;;
    unav100-subset) echo "unav100-subset_test_release.jsonl" ;;
    tut2017) echo "tut2017_test_release.jsonl" ;;
    castella) echo "castella_train_release.jsonl castella_val_release.jsonl castella_test_release.jsonl" ;;
    *) return 1 ;;
  esac
}
config_name() { case $1 in clotho_moment) echo clotho-moment ;; *) echo "$1" ;; esac; }

where_to_get() {
  local dataset=$1 name
  name=$(config_name "$dataset")
  echo "  annotations: $LIGHTHOUSE_RAW/$dataset/ -> data/$dataset/ (or rerun with --download)"
  case $dataset in
    castella)
      echo "  CASTELLA release: $CASTELLA_PAGE (annotations: github.com/line/castella," \
        "audio: github.com/h-munakata/CASTELLA-audio, CLAP features: Zenodo/HuggingFace links)"
      echo "  features: unpack the CLAP features to features/castella/clap/{vid}.npz and" \
        "features/castella/clap_text/qid{qid}.npz, or extract them: feature_extractors/castella.sh AUDIO_DIR" ;;
    *)
      echo "  features: CLAP features of Clotho-Moment, UnAV-100 subset and TUT2017 at $AMR_FEATURES;" \
        "unpack to features/$name/clap/{vid}.npz and features/$name/clap_text/qid{qid}.npz" ;;
  esac
  if [ "$dataset" = clotho_moment ]; then
    echo "  audio: Clotho-Moment wav files at $CLOTHO_MOMENT_WAVS (or render the official recipes:" \
      "lighthouse simulate --recipe recipe_test.json --audio-root GENERATOR_DIR --out DIR)"
  fi
}

md5_of() {
  if command -v md5sum >/dev/null; then md5sum "$1" | cut -d' ' -f1; else md5 -q "$1"; fi
}

expected_md5() {  # "" when no checksum is recorded
  awk -v f="$1" '$2 == f { print $1 }' "$DATA_DIR/checksums.md5"
}

fetch() {  # url target
  local tmp="$2.part.$$"
  if command -v curl >/dev/null; then curl -fsSL "$1" -o "$tmp"
  elif command -v wget >/dev/null; then wget -q "$1" -O "$tmp"
  else echo "neither curl nor wget found: download $1 yourself" >&2; return 1; fi
  mv "$tmp" "$2"
}

prepare() {
  local dataset=$1 status=0 file rel target want got
  files_of "$dataset" >/dev/null || { echo "unknown dataset '$dataset'" >&2; usage; }
  echo "$dataset ($(config_name "$dataset") in configs/dataset/):"
  mkdir -p "$DATA_DIR/$dataset"
  for file in $(files_of "$dataset"); do
    rel="$dataset/$file"
    target="$DATA_DIR/$rel"
    if [ ! -f "$target" ] && [ -n "$FROM" ]; then
      for candidate in "$FROM/$rel" "$FROM/$file"; do
        if [ -f "$candidate" ]; then cp "$candidate" "$target"; echo "  copied $candidate"; break; fi
      done
    fi
    if [ ! -f "$target" ] && [ "$DOWNLOAD" = 1 ]; then
      fetch "$LIGHTHOUSE_RAW/$rel" "$target" && echo "  downloaded $rel" || true
    fi
    want=$(expected_md5 "$rel")
    if [ ! -f "$target" ]; then
      echo "  missing   data/$rel"; [ "$status" = 2 ] || status=1
    elif [ -z "$want" ]; then
      echo "  present   data/$rel (no checksum recorded)"
    else
      got=$(md5_of "$target")
      if [ "$got" = "$want" ]; then echo "  ok        data/$rel"
      else echo "  MISMATCH  data/$rel: md5 $got, expected $want"; status=2; fi
    fi
  done
  name=$(config_name "$dataset")
  if [ -d "$REPO_DIR/features/$name" ]; then
    echo "  features/$name: $(ls "$REPO_DIR/features/$name" | tr '\n' ' ')"
  fi
  [ "$status" = 0 ] || where_to_get "$dataset"
  return "$status"
}

[ $# -ge 1 ] || usage
DATASET=$1; shift
FROM=""; DOWNLOAD=0
while [ $# -gt 0 ]; do
  case $1 in
    --from) FROM=${2:?--from needs a folder}; shift 2 ;;
    --download) DOWNLOAD=1; shift ;;
    *) usage ;;
  esac
done
if [ "$DATASET" = all ]; then set -- clotho_moment unav100-subset tut2017 castella; else set -- "$DATASET"; fi
worst=0
for dataset in "$@"; do
  code=0; prepare "$dataset" || code=$?
  [ "$code" -le "$worst" ] || worst=$code
done
exit "$worst"
