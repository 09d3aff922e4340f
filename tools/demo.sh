#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make demo: shows gpufuse's GPU model table, then runs the demo program on the sim (two
# simulated GPUs, an H100 and a T4) — or on the real driver when GPUFUSE_DEMO_REAL=1.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export GPUFUSE_TEST_DIR=$root
echo "== gpufuse models"
"$build/bin/gpufuse" models
echo
if [ "${GPUFUSE_DEMO_REAL:-0}" = 1 ]; then
    echo "== the demo on the real driver"
    exec "$build/demo/sim_demo"
fi
state=$(mktemp -u /tmp/gpufuse-demo-XXXXXX)
trap 'rm -f "$state"' EXIT
echo "== the demo on the sim (GPUFUSE_SIM_GPUS=${GPUFUSE_SIM_GPUS:-H100,T4})"
GPUFUSE_SIM_GPUS=${GPUFUSE_SIM_GPUS:-H100,T4} GPUFUSE_SIM_STATE=$state \
    LD_LIBRARY_PATH=$build/lib/sim "$build/demo/sim_demo"
