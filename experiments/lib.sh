# Sourced by the experiment scripts.
#
# hamlet_experiment_flags SCRIPT ARGS...: parses the flags the experiment scripts share into the caller's variables
#   mode (quick with --quick, else full), regenerate (1 with --results, else 0) and flag (the flags as given, for
#   provenance lines), and sets bin (the hamlet binary: $HAMLET_BIN, else build/hamlet of this checkout); any other
#   argument is an error naming SCRIPT.
hamlet_experiment_flags() {
  local script=$1
  shift
  bin="${HAMLET_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/hamlet}"
  mode=full flag="" regenerate=0
  local arg
  for arg in "$@"; do
    case "$arg" in
      --quick) mode=quick flag="$flag --quick" ;;
      --results) regenerate=1 flag="$flag --results" ;;
      *) echo "$script: unknown argument '$arg' (valid: --quick, --results)" >&2; exit 2 ;;
    esac
  done
}

# hamlet_full_only_flags SCRIPT ARGS...: hamlet_experiment_flags for a script that has no --quick mode.
hamlet_full_only_flags() {
  hamlet_experiment_flags "$@"
  [ "$mode" = full ] || { echo "$1: there is no --quick mode" >&2; exit 2; }
}

# Where a run writes, so that a user's run never rewrites the committed results/. Usage, after parsing the flags:
#   out="$(hamlet_output_dir NAME COMMITTED_DIR REGENERATE)"
# prints, in this order of precedence:
#   $HAMLET_RESULTS_DIR            when set (an explicit directory);
#   COMMITTED_DIR                  when REGENERATE is 1 (the script's --results flag: regenerate results/ on purpose);
#   <repo>/runs/<UTC time>-NAME    otherwise (git ignores runs/).
hamlet_output_dir() {
  local name=$1 committed=$2 regenerate=$3
  local repo
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  if [ -n "${HAMLET_RESULTS_DIR:-}" ]; then
    echo "$HAMLET_RESULTS_DIR"
  elif [ "$regenerate" = 1 ]; then
    echo "$committed"
  else
    echo "$repo/runs/$(date -u +%Y%m%d-%H%M%S)-$name"
  fi
}

# hamlet_begin NAME [SUBDIR...]: starts a study: `log MESSAGE` then prints "[NAME] MESSAGE" to stderr, `start` holds
#   the start time (seconds since the epoch) for the wall time in the provenance, and each "$out"/SUBDIR is emptied
#   and created, so a rerun starts from nothing.
hamlet_begin() {
  hamlet_log_name=$1
  shift
  start=$(date +%s)
  local dir
  for dir in "$@"; do
    rm -rf "${out:?hamlet_begin: out is not set}/$dir"
    mkdir -p "$out/$dir"
  done
}
log() { echo "[${hamlet_log_name:-hamlet}] $*" >&2; }

# hamlet_wall_time: "wall time N s on K CPU core(s) (MODEL)" since hamlet_begin, for a provenance line.
hamlet_wall_time() {
  echo "wall time $(( $(date +%s) - start )) s on $(nproc) CPU core(s) ($(lscpu | sed -n 's/^Model name: *//p'))"
}

# hamlet_paper_learned: the registered learned optimizers (`$bin list --names learned`, registry order) that the paper
#   protocol covers, i.e. that have an optimizer file in experiments/protocols/quadratic/; a newer optimizer joins
#   the paper studies when its protocol files are added.
hamlet_paper_learned() {
  local repo name names=()
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  for name in $("$bin" list --names learned); do
    [ -f "$repo/experiments/protocols/quadratic/$name.ini" ] && names+=("$name")
  done
  echo "${names[*]}"
}

# hamlet_paper_study SCRIPT NAME COMMITTED_DIR ARGS...: the preamble of a study over the paper's tables without a
#   --quick mode: parses ARGS (hamlet_full_only_flags), sets out (hamlet_output_dir NAME COMMITTED_DIR), full (the
#   full reproduction's results), protocols, jobs ($HAMLET_JOBS, default nproc), reads experiments/paper/tables.txt
#   (hamlet_paper_tables) and starts the log and clock (hamlet_begin NAME).
hamlet_paper_study() {
  local script=$1 name=$2 committed=$3 repo
  shift 3
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  hamlet_full_only_flags "$script" "$@"
  out="$(hamlet_output_dir "$name" "$committed" "$regenerate")"
  full="$repo/results/paper/full"
  protocols="$repo/experiments/protocols"
  jobs="${HAMLET_JOBS:-$(nproc)}"
  hamlet_paper_tables
  hamlet_begin "$name"
}

# The hand-designed rows of the HNN mass-spring task: the transfer study's run file (same task and problems), which
# experiments/hnn/ references instead of evaluating again. Relative to the repository root.
hamlet_hnn_baselines=results/transfer/hnn_spring/baselines.h5

# hamlet_write_file TARGET FUNCTION [ARGS...]: runs FUNCTION with its output in TARGET.tmp and renames that to
# TARGET, so a reader never sees half a table. Call it as a plain statement: under the scripts' `set -e` a failure
# inside FUNCTION stops the script before the rename, leaving the previous TARGET and a (git-ignored) TARGET.tmp.
hamlet_write_file() {
  local target=$1
  shift
  "$@" > "$target.tmp"
  mv "$target.tmp" "$target"
}

# hamlet_require_positive SCRIPT NAME VALUE: exits 2 with a message naming SCRIPT, NAME and VALUE unless VALUE is a
# positive integer (the job counts and budgets that experiment scripts read from variables).
hamlet_require_positive() {
  [[ "$3" =~ ^[1-9][0-9]*$ ]] || { echo "$1: $2 must be a positive integer, got '$3'" >&2; exit 2; }
}

# hamlet_budget_evaluate BIN TASK_INI OPTIMIZER_INI NAME WEIGHTS OUT [evaluate flags...]: the budget study's
# evaluation of one meta-trained learned optimizer, Table A2's test problems as the task file gives them, into the
# run file OUT (experiments/budget/run.sh and import_paper_rows.sh; extra flags, e.g. EVAL_FLAGS, go last and win).
hamlet_budget_evaluate() {
  local bin=$1 task=$2 optimizer=$3 name=$4 weights=$5 out=$6
  shift 6
  "$bin" evaluate --config="$task" --config="$optimizer" --optimizers="$name" --optimizer."$name".weights="$weights" \
    "$@" --log-level=warn --out="$out" >/dev/null
}

# hamlet_by_seed FILE...: the files one per line, ordered by the number K of their "_seedK" (stable: files of one seed
# keep their order); a file without one counts as seed 0 (the transfer study's first files, learned[_NAME].h5).
hamlet_by_seed() {
  local f
  for f in "$@"; do
    if [[ "$f" =~ _seed([0-9]+)[^/]*$ ]]; then echo "${BASH_REMATCH[1]} $f"; else echo "0 $f"; fi
  done | sort -s -n -k1,1 | cut -d' ' -f2-
}

# hamlet_compare_table BIN DIR TITLE [compare flags...]: prints the `hamlet compare` Markdown table of a table
# directory (DIR/baselines.h5 and every DIR/learned*.h5, one file per meta-training seed) and writes the same
# comparison as DIR/comparison.json.
hamlet_compare_table() {
  local bin=$1 dir=$2 title=$3
  shift 3
  local inputs=(--in="$dir/baselines.h5") f
  # In meta-training seed order (learned_seedK.h5 and learned_NAME_seedK.h5 alike), so that the per-seed means of
  # the "seeds" column read seed 0, 1, 2, ...
  while read -r f; do [ -f "$f" ] && inputs+=(--in="$f"); done < <(hamlet_by_seed "$dir"/learned*.h5)
  "$bin" compare "${inputs[@]}" --title="$title" "$@"
  "$bin" compare "${inputs[@]}" --title="$title" "$@" --format=json --out="$dir/comparison.json" 2>/dev/null
}

# hamlet_provenance_section DIR: prints DIR/PROVENANCE.md under a "## Provenance" heading, if it exists.
hamlet_provenance_section() {
  [ -f "$1/PROVENANCE.md" ] || return 0
  echo "## Provenance"
  echo
  cat "$1/PROVENANCE.md"
}

# hamlet_table_rows FILE: the data lines of a "|"-separated table file (experiments/transfer/targets.txt), every
# field trimmed, comments and blank lines dropped; read them with `while IFS='|' read -r a b ...`.
hamlet_table_rows() {
  sed -e 's/#.*//' -e 's/[[:space:]]*|[[:space:]]*/|/g' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$1" | grep -v '^$'
}

# hamlet_tables_rows FILE...: hamlet_table_rows of every FILE, in order (a suite given as several task files).
hamlet_tables_rows() {
  local f
  for f in "$@"; do hamlet_table_rows "$f"; done
}

# A pool of background jobs, at most JOBS at a time (each hamlet process uses one thread):
#   hamlet_run_job JOBS COMMAND ARGS...   starts COMMAND in the background once fewer than JOBS jobs run
#   hamlet_wait_jobs                      waits for every job started so; fails if any of them failed
hamlet_job_pids=()
hamlet_run_job() {
  local jobs=$1
  shift
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  "$@" &
  hamlet_job_pids+=($!)
}
hamlet_wait_jobs() {
  local pid failed=0
  for pid in "${hamlet_job_pids[@]}"; do wait "$pid" || failed=1; done
  hamlet_job_pids=()
  return $failed
}

# hamlet_paper_tables: reads experiments/paper/tables.txt into the caller's globals paper_tables (the table names in
# order, space-separated) and the associative arrays paper_trained_on, paper_title, paper_published (by table).
# hamlet_check_tables SCRIPT NAMES...: an error naming SCRIPT for a name that is not one of paper_tables.
hamlet_paper_tables() {
  local repo name trained title published
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  declare -gA paper_trained_on=() paper_title=() paper_published=()
  paper_tables=""
  while IFS='|' read -r name trained title published; do
    paper_tables="${paper_tables:+$paper_tables }$name"
    paper_trained_on[$name]=$trained paper_title[$name]=$title paper_published[$name]=$published
  done < <(hamlet_table_rows "$repo/experiments/paper/tables.txt")
}
# hamlet_protocol_meta_lr BIN TABLE NAME: the meta-lr that experiments/protocols/TABLE/{task,NAME}.ini give, as
# hamlet resolves it (`meta-train --print-config`).
hamlet_protocol_meta_lr() {
  local repo
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  "$1" meta-train --config="$repo/experiments/protocols/$2/task.ini" --config="$repo/experiments/protocols/$2/$3.ini" \
    --print-config | sed -n 's/^meta-lr = //p'
}
hamlet_check_tables() {
  local script=$1 t
  shift
  for t in "$@"; do
    [[ " $paper_tables " == *" $t "* ]] || { echo "$script: TABLES: unknown table '$t' (${paper_tables// /, })" >&2; exit 2; }
  done
}
