#!/usr/bin/env bash
# Builds the libFuzzer targets with clang++-16 and runs each one for CAI_FUZZ_SECONDS (default 10) on a
# scratch copy of its committed seed corpus (tests/fuzz/corpus/<name>/). A crash leaves its input in the
# work folder and fails the run: copy it to tests/fuzz/regressions/<name>/ so that the regression test
# replays it forever. Exits 77 (CTest: skipped) when clang++-16 is not installed.
# Usage: run_fuzzers.sh WORK_DIR [TARGET...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:?usage: run_fuzzers.sh WORK_DIR [TARGET...]}
shift
mkdir -p "$work"
cxx=${CAI_FUZZ_CXX:-clang++-16}
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "fuzz: $cxx not found (scripts/setup installs clang-16 and libclang-rt-16-dev): skipped"
  exit 77
fi
seconds=${CAI_FUZZ_SECONDS:-10}
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S "$here/project" -B "$work/build" "${generator[@]}" -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAI_ENABLE_CUDA=OFF > "$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; exit 1; }
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$here"/project/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi
cmake --build "$work/build" --target "${targets[@]}" -j "$(nproc)" > "$work/build.log" 2>&1 ||
  { tail -50 "$work/build.log"; exit 1; }
status=0
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  corpus="$work/corpus/$name"
  rm -rf "$corpus" && mkdir -p "$corpus"
  [ -d "$here/corpus/$name" ] && cp "$here/corpus/$name"/* "$corpus"/ 2>/dev/null || true
  echo "fuzz: $t for ${seconds}s"
  if ! (cd "$work" && "$work/build/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
          -print_final_stats=1 "$corpus" > "$work/$t.log" 2>&1); then
    echo "fuzz: $t FAILED; the crashing input is in $work (crash-*, timeout-*, oom-*); log:"
    tail -60 "$work/$t.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$work/$t.log" | sed "s/^/fuzz: $t: /"
  fi
done
[ $status -eq 0 ] && echo "fuzz: all targets ran clean"
exit $status
