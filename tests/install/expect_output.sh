#!/usr/bin/env bash
# Runs a command, shows what it printed, and passes only when it exits with STATUS and its output (stdout and
# stderr together) matches the extended regular expression PATTERN: ctest's PASS_REGULAR_EXPRESSION alone would
# ignore the exit status. Used by the install tests (tests/CMakeLists.txt).
# Usage: expect_output.sh STATUS PATTERN COMMAND [args...]
set -uo pipefail
if [ $# -lt 3 ]; then
  echo "usage: expect_output.sh STATUS PATTERN COMMAND [args...]" >&2
  exit 2
fi
expected=$1 pattern=$2
shift 2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
"$@" >"$log" 2>&1
status=$?
cat "$log"
if [ "$status" -ne "$expected" ]; then
  echo "expect_output.sh: exit status $status, expected $expected" >&2
  exit 1
fi
if ! grep -Eq -- "$pattern" "$log"; then
  echo "expect_output.sh: the output does not match '$pattern'" >&2
  exit 1
fi
