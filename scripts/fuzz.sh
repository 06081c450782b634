#!/usr/bin/env bash
# Runs every cargo-fuzz target (or the ones named) for a bounded time, one
# job at a time, and prints executions and crashes per target. Exits non-zero
# if any target crashed (a panic, an abort, a timeout or running out of
# memory); the crashing input is left in fuzz/artifacts/<target>/.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s)
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Not part of CI. The growing corpus goes to fuzz/corpus/<target>/ (ignored
# by git); the committed seeds in fuzz/seeds/<target>/ are read only.
set -uo pipefail

seconds=${1:-60}
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
cd "$(dirname "$0")/../fuzz" || exit 2

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
for t in "${targets[@]}"; do cargo +nightly fuzz build -O -a "$t" || exit 2; done

logs=$(mktemp -d)
failed=0
summary=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    dirs=("corpus/$target")
    [ -d "seeds/$target" ] && dirs+=("seeds/$target")
    extra=()
    case "$target" in
        decode_*) extra+=("-dict=json.dict") ;;
    esac
    log="$logs/$target.log"
    echo "== $target: ${seconds}s" >&2
    cargo +nightly fuzz run -O -a "$target" "${dirs[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "${extra[@]}" >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    if [ -z "$execs" ]; then
        execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
    fi
    crashes=0
    artifact=""
    if [ "$rc" -ne 0 ]; then
        crashes=1
        failed=1
        artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -1 | sed 's/Test unit written to //')
        grep -m1 -A3 -E "panicked at|ERROR: libFuzzer|deadly signal|out-of-memory|timeout" "$log" >&2
        echo "   log: $log" >&2
    fi
    summary+=("$(printf '%-28s %12s %8s  %s' "$target" "${execs:-?}" "$crashes" "$artifact")")
done

printf '%-28s %12s %8s  %s\n' target executions crashes artifact
printf '%s\n' "${summary[@]}"
exit "$failed"
