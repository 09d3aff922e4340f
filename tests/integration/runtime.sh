#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# gpufuse's CUDA runtime end to end: builds tests/runtime/*.cu with `nvcc -cudart shared` into
# $GPUFUSE_BUILD_DIR/runtime/ and runs the same programs as one matrix, through
# $GPUFUSE_BUILD_DIR/lib/libcudart.so.13:
#   sim:      on the sim directly (api with two GPUs);
#   vgpu-1Gi: under `gpufuse run --vram 1Gi` on the sim (cudaMemGetInfo shows 1 GiB, the limit holds);
#   tcp, tls, shm: `gpufuse run --remote ADDR --vram 1Gi` against a `gpufuse worker` on the sim,
#             one per transport, the client with no driver (GPUFUSE_DRIVER=/nonexistent).
# Cases the remote backend cannot run yet (docs/remote.md) print SKIP lines with the reason. It
# also checks `gpufuse run --runtime` (which libcudart.so.13 a program gets, by default and when
# forced), CUDA_MODULE_LOADING=EAGER, the symbol versions nvcc's host code references, and that a
# program carrying NVIDIA's runtime fails fast with one clear message.
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
gf=$build/bin/gpufuse
sim_env=(GPUFUSE_DRIVER="$lib/sim/libcuda.so.1" GPUFUSE_NVML="$lib/sim/libnvidia-ml.so.1")
vram=$((1 << 30))
work=$(mktemp -d "${TMPDIR:-/tmp}/gf-rt-XXXXXX")
cleanup() { # workers left behind by a column that did not finish
    local f
    for f in "$work"/worker-*/pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

rc_all=0
# Runs one program; passes its PASS/FAIL/SKIP lines through with the column's label; the tail of
# its output (indented: the runner counts only lines at column 0) when it failed.
run_prog() { # column exe [env...] [-- wrapper...]
    local col=$1 exe=$2
    shift 2
    local name
    name=$(basename "$exe")
    local log=$out/$col.$name.out st=$work/state.$col.$name
    local envs=() wrap=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    [ $# -gt 0 ] && shift && wrap=("$@")
    env GPUFUSE_SIM_STATE="$st" "${envs[@]}" timeout 300 "${wrap[@]}" "$exe" >"$log" 2>&1
    local rc=$?
    rm -f "$st"
    grep -E '^(PASS|FAIL|SKIP) ' "$log" | sed -E "s/^(PASS|FAIL|SKIP) /\1 $col:/"
    local fails
    fails=$(grep -c '^FAIL ' "$log")
    if [ "$rc" -ne 0 ] && [ "$fails" -eq 0 ]; then
        echo "FAIL $col:$name: exited with status $rc"
        fails=1
    fi
    if ! grep -qE '^(PASS|SKIP) ' "$log" && [ "$fails" -eq 0 ]; then
        echo "FAIL $col:$name: printed no result"
        fails=1
    fi
    if [ "$fails" -gt 0 ]; then
        echo "---- $col:$name (tail of $log)"
        tail -n 40 "$log" | sed 's/^/  | /'
        echo "----"
    fi
}

has() { local x; for x in "${built[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }
programs=()
for n in "${built[@]}"; do [ "$n" = vector_add_static ] || programs+=("$n"); done

# shellcheck source=../runtime/remote_skips.sh
. "$root/tests/runtime/remote_skips.sh"

column_sim() {
    local n
    for n in "${programs[@]}"; do
        case $n in
        api) run_prog sim "$out/$n" LD_PRELOAD="$preload" GPUFUSE_SIM_GPUS=H100:2 ;;
        *) run_prog sim "$out/$n" LD_PRELOAD="$preload" ;;
        esac
    done
    if has vector_add; then
        run_prog sim-eager "$out/vector_add" LD_PRELOAD="$preload" CUDA_MODULE_LOADING=EAGER
    fi
}

# gpufuse run preloads its own sanitizer runtime (it is an ASan build in make test).
column_vgpu() {
    local n
    for n in "${programs[@]}"; do
        run_prog vgpu-1Gi "$out/$n" LD_PRELOAD= "${sim_env[@]}" GPUFUSE_SHM_DIR="$work" \
            RT_EXPECT_VRAM=$vram -- "$gf" run --vram 1Gi --
    done
}

# Starts `gpufuse worker --listen listen` on the sim (a child of the calling shell, so that it
# can wait for it); sets wpid and addr (from --ready-file); returns 1 when it did not come up.
start_worker() { # name listen [worker flags...]
    local name=$1 listen=$2
    shift 2
    local d=$work/worker-$name
    mkdir -p "$d"
    env LD_PRELOAD= GPUFUSE_DRIVER="$lib/sim/libcuda.so.1" GPUFUSE_SIM_STATE="$d/state" \
        GPUFUSE_SHM_DIR="$d" "$gf" worker --listen "$listen" --ready-file "$d/ready" "$@" \
        >"$d/log" 2>&1 &
    wpid=$!
    echo "$wpid" >"$d/pid"
    local i
    for i in $(seq 200); do
        if [ -s "$d/ready" ]; then
            addr=$(head -n 1 "$d/ready")
            return 0
        fi
        kill -0 "$wpid" 2>/dev/null || break
        sleep 0.05
    done
    return 1
}

# One transport: a worker, every program through gpufuse run --remote, then the worker must
# stop cleanly on SIGTERM (exit 0: its sanitizers found nothing).
column_remote() { # transport listen [client env...]
    local t=$1 listen=$2
    shift 2
    local d=$work/worker-$t extra=() addr="" wpid="" n
    if [ "$t" = tls ]; then
        if ! openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
            -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
            >"$work/openssl.log" 2>&1; then
            echo "SKIP $t:all: openssl could not make a test certificate: $(tail -n 1 "$work/openssl.log")"
            return 0
        fi
        extra=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
    fi
    if ! start_worker "$t" "$listen" "${extra[@]}"; then
        echo "FAIL $t:worker: gpufuse worker --listen $listen did not come up:"
        tail -n 20 "$d/log" | sed 's/^/  | /'
        return 0
    fi
    for n in "${programs[@]}"; do
        run_prog "$t" "$out/$n" LD_PRELOAD= GPUFUSE_DRIVER=/nonexistent/libcuda.so.1 \
            GPUFUSE_REMOTE_TIMEOUT=30s RT_EXPECT_VRAM=$vram RT_SKIP="$(remote_skips "$n")" "$@" \
            -- "$gf" run --remote "$addr" --vram 1Gi --
    done
    kill -TERM "$wpid"
    wait "$wpid"
    local st=$?
    rm -f "$d/pid"
    if [ "$st" -eq 0 ]; then
        echo "PASS $t:worker_stops_cleanly"
    else
        echo "FAIL $t:worker_stops_cleanly: the worker exited with status $st (want 0):"
        tail -n 30 "$d/log" | sed 's/^/  | /'
    fi
}

# The columns run side by side (each has its own sim state and worker); their lines come out in
# matrix order.
if [ ! -x "$gf" ]; then
    echo "FAIL runtime/gpufuse: $gf missing; run make (BUILD=$build)"
    rc_all=1
fi
column_sim >"$work/col.sim" 2>&1 &
cols=($!)
if [ -x "$gf" ]; then
    column_vgpu >"$work/col.vgpu" 2>&1 &
    cols+=($!)
    column_remote tcp tcp://127.0.0.1:0 >"$work/col.tcp" 2>&1 &
    cols+=($!)
    column_remote tls tls://127.0.0.1:0 GPUFUSE_REMOTE_CA="$work/cert.pem" >"$work/col.tls" 2>&1 &
    cols+=($!)
    column_remote shm "shm://gf-rt-$$" >"$work/col.shm" 2>&1 &
    cols+=($!)
fi
for p in "${cols[@]}"; do wait "$p"; done
for c in sim vgpu tcp tls shm; do
    [ -f "$work/col.$c" ] || continue
    cat "$work/col.$c"
    grep -q '^FAIL ' "$work/col.$c" && rc_all=1
done

# ---- gpufuse run --runtime: which libcudart.so.13 the command gets -----------------------------
# gpufuse's (first on LD_LIBRARY_PATH) when the vGPU is remote or the driver is the sim,
# NVIDIA's (gpufuse's lib dir left off the path, the driver libraries preloaded) on a real
# driver; the flag overrides. A copy of the sim's libcuda.so.1 stands in for a real driver: it is
# not the sim next to this gpufuse. ldd shows what the loader picks.
if [ -x "$gf" ] && has vector_add; then
    cp "$lib/sim/libcuda.so.1" "$work/libcuda.so.1"
    real_env=(GPUFUSE_DRIVER="$work/libcuda.so.1" GPUFUSE_NVML="$lib/sim/libnvidia-ml.so.1")
    probe='printf "LD_LIBRARY_PATH=%s\nLD_PRELOAD=%s\n" "$LD_LIBRARY_PATH" "$LD_PRELOAD"; ldd "$1"'
    choice() { # name want(gpufuse|nvidia) [env...] -- [run flags...]
        local name=$1 want=$2
        shift 2
        local envs=()
        while [ "$1" != -- ]; do envs+=("$1"); shift; done
        shift
        local o rc
        o=$(env LD_PRELOAD= LD_LIBRARY_PATH="$lib/sim" GPUFUSE_SHM_DIR="$work" "${envs[@]}" \
            "$gf" run "$@" -- sh -c "$probe" sh "$out/vector_add" 2>&1)
        rc=$?
        local llp first rt
        llp=$(sed -n 's/^LD_LIBRARY_PATH=//p' <<<"$o")
        first=${llp%%:*}
        rt=$(awk '/libcudart.so.13 =>/ {print $3}' <<<"$o")
        local ok=0
        if [ "$rc" -eq 0 ] && [ "$want" = gpufuse ]; then
            [ "$first" = "$lib" ] && [ "$(readlink -f "$rt")" = "$(readlink -f "$cudart")" ] && ok=1
        elif [ "$rc" -eq 0 ]; then
            case ":$llp:" in *":$lib:"*) ;; *)
                grep -q "^LD_PRELOAD=.*$lib/libgpufuse.so $lib/libnvidia-ml.so.1" <<<"$o" &&
                    [ "$(readlink -f "$rt")" != "$(readlink -f "$cudart")" ] && ok=1 ;;
            esac
        fi
        local label="gpufuse's"
        [ "$want" = nvidia ] && label="NVIDIA's"
        if [ "$ok" -eq 1 ]; then
            echo "PASS runtime/choice_$name: $label runtime (libcudart.so.13 => ${rt:-not found})"
        else
            echo "FAIL runtime/choice_$name: want $label runtime; gpufuse run $* gave (exit $rc):"
            sed 's/^/  | /' <<<"$o" | head -n 30
            rc_all=1
        fi
    }
    choice sim_default gpufuse "${sim_env[@]}" --
    choice sim_forced_nvidia nvidia "${sim_env[@]}" -- --runtime nvidia
    choice real_default nvidia "${real_env[@]}" --
    choice real_forced_gpufuse gpufuse "${real_env[@]}" -- --runtime=gpufuse
    choice remote_default gpufuse GPUFUSE_DRIVER=/nonexistent -- --remote tcp://127.0.0.1:9
    choice remote_forced_nvidia nvidia GPUFUSE_DRIVER=/nonexistent -- --remote tcp://127.0.0.1:9 \
        --runtime nvidia
    o=$("$gf" run --runtime cuda -- true 2>&1)
    rc=$?
    if [ "$rc" -eq 2 ] && grep -q -- '--runtime: "cuda": use gpufuse or nvidia' <<<"$o"; then
        echo "PASS runtime/choice_bad_value_is_an_error"
    else
        echo "FAIL runtime/choice_bad_value_is_an_error: exit $rc (want 2), said: $o"
        rc_all=1
    fi
    # Forced onto NVIDIA's shared runtime on the sim: it fails fast, and says how to fix it.
    nv=$(env LD_LIBRARY_PATH= ldconfig -p 2>/dev/null | awk '/libcudart.so.13 / {print $NF; exit}')
    [ -n "$nv" ] || nv=$(ls "$cuda"/lib64/libcudart.so.13 "$cuda"/lib/libcudart.so.13 2>/dev/null | head -n 1)
    if [ -z "$nv" ]; then
        echo "SKIP runtime/nvidia_shared_cudart_on_the_sim: NVIDIA's libcudart.so.13 not found" \
            "(ldconfig, $cuda/lib64)"
    else
        log=$out/nvidia_shared.out
        env LD_PRELOAD= LD_LIBRARY_PATH="$lib/sim:$(dirname "$nv")" GPUFUSE_SHM_DIR="$work" \
            GPUFUSE_SIM_STATE="$work/state.nvshared" "${sim_env[@]}" \
            timeout 60 "$gf" run --runtime nvidia -- "$out/vector_add" >"$log" 2>&1
        rc=$?
        nmsg=$(grep -c "loaded NVIDIA's CUDA runtime .*libcudart.so.13.*--runtime gpufuse" "$log")
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -lt 128 ] && [ "$nmsg" -eq 1 ]; then
            echo "PASS runtime/nvidia_shared_cudart_on_the_sim_fails_fast"
        else
            echo "FAIL runtime/nvidia_shared_cudart_on_the_sim_fails_fast: exit status $rc (want" \
                "non-zero, no timeout, no signal), the 'loaded NVIDIA's CUDA runtime' message" \
                "$nmsg time(s) (want 1)"
            tail -n 20 "$log" | sed 's/^/  | /'
            rc_all=1
        fi
    fi
fi

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
    nmsg=$(grep -c "links NVIDIA's CUDA runtime statically.*rebuild it with \`nvcc -cudart shared\`" "$log")
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -lt 128 ] && [ "$nmsg" -eq 1 ]; then
        echo "PASS runtime/static_cudart_fails_fast"
    else
        echo "FAIL runtime/static_cudart_fails_fast: exit status $rc (want non-zero, no timeout" \
            "124, no signal), the 'links NVIDIA's CUDA runtime statically ... rebuild it with" \
            "\`nvcc -cudart shared\`' message $nmsg time(s) (want 1)"
        tail -n 20 "$log" | sed 's/^/  | /'
        rc_all=1
    fi
fi
exit $rc_all
