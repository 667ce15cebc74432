#!/usr/bin/env bash
# The same gate as examples/ci/bench-gate.yml, for any CI system (or a cron job): run it from your project's
# root with bench installed. Exit status 0: every row passed; 1: a regression (the FAIL lines say where);
# 2: a usage error (e.g. no reference). JUnit XML goes to $REPORT for the CI's test view.
#   examples/ci/bench-gate.sh                 check against ci/reference.json
#   examples/ci/bench-gate.sh --make-reference   run the reference's 8 seeds here and write ci/reference.json
set -euo pipefail
reference=${REFERENCE:-ci/reference.json}
report=${REPORT:-gate-report.xml}
budget=(--train-subset 2000 --threads 1 --numerics portable --no-latency --quiet)
runs="$(mktemp -d)"; trap 'rm -rf "$runs"' EXIT
if [ "${1:-}" = "--make-reference" ]; then
  bench reproduce smoke "${budget[@]}" --seeds 0,1,2,3,4,5,6,7 --out "$runs"
  bench check "$runs" --save-reference "$reference" --table smoke
  echo "review and commit $reference (git diff shows what changed)"
else
  bench reproduce smoke "${budget[@]}" --seeds 0,1 --out "$runs"
  bench check "$runs" --reference "$reference" --table smoke --junit "$report"
fi
