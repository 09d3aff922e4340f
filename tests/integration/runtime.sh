#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# gpufuse's CUDA runtime end to end: builds tests/runtime/*.cu with `nvcc -cudart shared` into
# $GPUFUSE_BUILD_DIR/runtime/ and runs them on the sim through $GPUFUSE_BUILD_DIR/lib/libcudart.so.13;
# checks the symbol versions nvcc's host code references, CUDA_MODULE_LOADING=EAGER, and that a
# program carrying NVIDIA's runtime statically fails fast with a clear message.
#
# Sanitizers: nvcc's programs are not instrumented. When the flavor's libcudart (and sim) are
# ASan builds (make test), libasan and libubsan are preloaded so that the library code still runs
# under ASan+UBSan (leak checking included); in a plain build nothing is preloaded.
#
#   tests/integration/runtime.sh               (from tests/run; or by hand, defaults below)
#   GPUFUSE_BUILD_DIR=build tests/integration/runtime.sh
set -u
root=${GPUFUSE_TEST_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${GPUFUSE_BUILD_DIR:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac
cuda=${CUDA_HOME:-/usr/local/cuda}
nvcc=$cuda/bin/nvcc
[ -x "$nvcc" ] || nvcc=$(command -v nvcc 2>/dev/null || true)
if [ -z "$nvcc" ]; then
    echo "SKIP runtime: nvcc not found (looked for $cuda/bin/nvcc and on PATH); install the CUDA" \
        "toolkit or set CUDA_HOME to build tests/runtime/*.cu"
    exit 0
fi

lib=$build/lib
cudart=$lib/libcudart.so.13
if [ ! -f "$cudart" ] || [ ! -f "$lib/sim/libcuda.so.1" ]; then
    echo "FAIL runtime/library: $cudart or $lib/sim/libcuda.so.1 missing; run make (BUILD=$build)"
    exit 1
fi
out=$build/runtime
mkdir -p "$out"
state_base=${GPUFUSE_SIM_STATE:-$(mktemp -u /tmp/gf-rt-state-XXXXXX)}
arch=${GPUFUSE_RT_ARCH:-sm_80}

# ---- build (in parallel; only what changed) ----------------------------------------------------
build_one() { # src exe extra-flags...
    local src=$1 exe=$2
    shift 2
    if [ "$exe" -nt "$src" ] && [ "$exe" -nt "$root/tests/runtime/rt_test.h" ]; then return 0; fi
    "$nvcc" -arch="$arch" -I"$root/tests/runtime" "$@" -o "$exe.tmp" "$src" >"$exe.log" 2>&1 &&
        mv "$exe.tmp" "$exe"
}
pids=()
names=()
for src in "$root"/tests/runtime/*.cu; do
    n=$(basename "$src" .cu)
    flags=$(sed -n 's|^// nvcc-flags: ||p' "$src")
    # shellcheck disable=SC2086
    build_one "$src" "$out/$n" -cudart shared $flags &
    pids+=($!)
    names+=("$n")
done
# nvcc's default: NVIDIA's runtime linked statically (the fail-fast check).
build_one "$root/tests/runtime/vector_add.cu" "$out/vector_add_static" -cudart static &
pids+=($!)
names+=(vector_add_static)
built=()
for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
        built+=("${names[$i]}")
    else
        echo "FAIL runtime/build_${names[$i]}: nvcc failed:"
        tail -n 20 "$out/${names[$i]}.log" | sed 's/^/  | /'
    fi
done

# ---- how the programs run --------------------------------------------------------------------
# The sim first: libcudart dlopen()s libcuda.so.1, and $lib holds the client library under that
# name. $lib second, for libcudart.so.13 (ahead of any NVIDIA runtime on the system path).
export LD_LIBRARY_PATH=$lib/sim:$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
preload=""
if readelf -d "$cudart" 2>/dev/null | grep -q 'NEEDED.*libasan'; then
    cc=${CC:-cc}
    preload="$($cc -print-file-name=libasan.so) $($cc -print-file-name=libubsan.so)"
    echo "note: $cudart is an ASan+UBSan build: preloading $preload into the nvcc programs"
fi

rc_all=0
run_prog() { # label exe [env...]: runs, passes its PASS/FAIL lines through with the label
    local label=$1 exe=$2
    shift 2
    local log=$out/$label.out st=$state_base.$label
    rm -f "$st"
    env GPUFUSE_SIM_STATE="$st" LD_PRELOAD="$preload" "$@" timeout 300 "$exe" >"$log" 2>&1
    local rc=$?
    rm -f "$st"
    if [ "$label" = "$(basename "$exe")" ]; then
        grep -E '^(PASS|FAIL) ' "$log"
    else
        grep -E '^(PASS|FAIL) ' "$log" | sed -E "s/^(PASS|FAIL) /\1 $label:/"
    fi
    local fails
    fails=$(grep -c '^FAIL ' "$log")
    if [ "$rc" -ne 0 ] && [ "$fails" -eq 0 ]; then
        echo "FAIL runtime/$label: exited with status $rc"
        fails=1
    fi
    if ! grep -q '^PASS ' "$log" && [ "$fails" -eq 0 ]; then
        echo "FAIL runtime/$label: printed no result"
        fails=1
    fi
    if [ "$fails" -gt 0 ]; then
        rc_all=1
        echo "---- $label (tail of $log)"
        tail -n 40 "$log" | sed 's/^/  | /' # indented: the runner counts only PASS/FAIL at column 0
        echo "----"
    fi
}

has() { local x; for x in "${built[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }

for n in "${built[@]}"; do
    case $n in
    vector_add_static) continue ;;
    api) run_prog "$n" "$out/$n" GPUFUSE_SIM_GPUS=H100:2 ;;
    *) run_prog "$n" "$out/$n" ;;
    esac
done
has vector_add && run_prog eager "$out/vector_add" CUDA_MODULE_LOADING=EAGER

# ---- the library the programs load, and the symbols they reference ---------------------------
if has vector_add; then
    got=$(ldd "$out/vector_add" | awk '/libcudart.so.13/ {print $3}')
    if [ "$(readlink -f "$got")" = "$(readlink -f "$cudart")" ]; then
        echo "PASS runtime/loads_gpufuse_cudart"
    else
        echo "FAIL runtime/loads_gpufuse_cudart: libcudart.so.13 resolves to '$got', want $cudart"
        rc_all=1
    fi
fi

exports=$(objdump -T "$cudart" | awk 'NF > 1 && $(NF-1) == "libcudart.so.13" {print $NF}' | sort -u)
bad=""
nrefs=0
for n in "${built[@]}"; do
    [ "$n" = vector_add_static ] && continue
    while read -r ver sym; do
        nrefs=$((nrefs + 1))
        if [ "$ver" != "(libcudart.so.13)" ]; then
            bad="$bad $n:$sym@$ver"
        elif ! grep -qx "$sym" <<<"$exports"; then
            bad="$bad $n:$sym(not exported)"
        fi
    done < <(objdump -T "$out/$n" | awk '/\*UND\*/ && ($(NF) ~ /^_*cuda/) {print $(NF-1), $NF}')
done
if [ -z "$bad" ] && [ "$nrefs" -gt 0 ]; then
    echo "PASS runtime/symbol_versions"
else
    echo "FAIL runtime/symbol_versions: $nrefs references; wrong or missing:$bad"
    rc_all=1
fi

if has ptds; then
    refs=$(objdump -T "$out/ptds" | awk '/\*UND\*/ {print $NF}')
    missing=""
    for want in __cudaLaunchKernel_ptsz cudaMemcpy_ptds cudaMemset_ptds cudaStreamSynchronize_ptsz; do
        grep -qx "$want" <<<"$refs" || missing="$missing $want"
    done
    if [ -z "$missing" ]; then
        echo "PASS runtime/ptds_entry_points"
    else
        echo "FAIL runtime/ptds_entry_points: --default-stream per-thread build lacks$missing"
        rc_all=1
    fi
fi

# ---- NVIDIA's runtime linked statically: one clear message, non-zero exit, no hang or crash ----
if has vector_add_static; then
    log=$out/vector_add_static.out
    st=$state_base.static
    # Not preloaded: this program never loads gpufuse's runtime, only the sim.
    GPUFUSE_SIM_STATE=$st timeout 60 env LD_PRELOAD="$preload" "$out/vector_add_static" >"$log" 2>&1
    rc=$?
    rm -f "$st"
    nmsg=$(grep -c -- '-cudart shared' "$log")
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -lt 128 ] && [ "$nmsg" -eq 1 ]; then
        echo "PASS runtime/static_cudart_fails_fast"
    else
        echo "FAIL runtime/static_cudart_fails_fast: exit status $rc (want non-zero, no timeout" \
            "124, no signal), the '-cudart shared' message $nmsg time(s) (want 1)"
        tail -n 20 "$log" | sed 's/^/  | /'
        rc_all=1
    fi
fi
exit $rc_all
