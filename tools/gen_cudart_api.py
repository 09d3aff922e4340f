#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generate the exported surface of gpufuse's CUDA runtime (build/lib/libcudart.so.13).

The runtime-API twin of tools/gen_cuda_api.py (STYLE.md habit 6: one source of truth, read from
the toolkit's headers). It writes, into --out:

  cudart_stubs.c        a weak, default-visibility definition of every runtime function that
                        cuda_runtime_api.h and cuda_profiler_api.h declare; each logs its name once
                        (gf_cudart__unsupported) and returns cudaErrorNotSupported. The functions
                        src/cudart/ implements are strong definitions in the same library and win at
                        link time.
  cudart_exports.lds    a linker version script that puts every export under the version node
                        `libcudart.so.13`, as NVIDIA's libcudart.so.13 does, so that programs linked
                        against NVIDIA's runtime (their references carry that version) bind to ours.
  cudart_errors.h       GF_CUDART_ERR(name, value, "description") for every enum cudaError member
                        (driver_types.h), with the description taken from its doc comment; and
                        GF_CUDART_CU_MAX, the largest CUresult value (for the CUresult mapping).
  cudart_names.txt      the exported names, one per line (the tests compare them with what nvcc's
                        host code references).

Usage: python3 tools/gen_cudart_api.py --cuda-home /usr/local/cuda --out build/gen

How it parses: `$CC -E -D__CUDA_API_VERSION_INTERNAL` over cuda_runtime_api.h. With that define the
header declares each per-thread-default-stream variant under its exported name (cudaMemcpy_ptds,
cudaLaunchKernel_ptsz, ...) in its main body, then #undefs the renaming macros and declares the
legacy-stream names again at its end, so one pass yields every symbol NVIDIA's library exports
from that header (378 for CUDA 13.0).

Not in any C header, hence listed here by hand (REGISTRATION below): the entry points that nvcc's
generated host code calls, declared in crt/host_runtime.h and crt/device_functions.h (C++ only).
Not generated: the graphics interop functions (cuda_gl_interop.h, cuda_egl_interop.h,
cuda_vdpau_interop.h need GL/EGL/VDPAU headers) and NVIDIA's private __cudaRegisterHostVar,
__cudaRegisterUnifiedTable and __cudaGetProcAddress.
"""

import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_cuda_api import insert_param_name, norm_ws, param_name, split_params, top_level_statements  # noqa: E402

GENERATOR = "tools/gen_cudart_api.py"
VERSION_NODE = "libcudart.so.13"

# The entry points of nvcc's host code (crt/host_runtime.h, crt/device_functions.h, CUDA 13.0).
# src/cudart/register.c and launch.c implement all of them; they are exported, never stubbed.
REGISTRATION = [
    "__cudaRegisterFatBinary",
    "__cudaRegisterFatBinaryEnd",
    "__cudaUnregisterFatBinary",
    "__cudaRegisterFunction",
    "__cudaRegisterVar",
    "__cudaRegisterManagedVar",
    "__cudaInitModule",
    "__cudaPushCallConfiguration",
    "__cudaPopCallConfiguration",
    "__cudaGetKernel",
    "__cudaLaunchKernel",
    "__cudaLaunchKernel_ptsz",
]

HEADERS = ["cuda_runtime_api.h", "cuda_profiler_api.h"]


def die(msg):
    print(f"gen_cudart_api.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


def preprocess(cc, include_dir, headers):
    """Preprocessed text of the given headers' own lines (other headers' lines dropped)."""
    wanted = {os.path.realpath(os.path.join(include_dir, h)) for h in headers}
    src = "".join(f"#include <{h}>\n" for h in headers)
    cmd = [cc, "-E", "-std=c11", "-D__CUDA_API_VERSION_INTERNAL", "-I", include_dir, "-x", "c", "-"]
    try:
        res = subprocess.run(cmd, input=src, capture_output=True, text=True)
    except OSError as e:
        die(f"cannot run the C preprocessor '{cc}': {e}; set CC or pass --cc")
    if res.returncode != 0:
        die(f"'{' '.join(cmd)}' failed:\n{res.stderr}")
    keep, inside = [], False
    for line in res.stdout.splitlines():
        m = re.match(r'#\s*\d+\s+"([^"]*)"', line)
        if m:
            inside = m.group(1)[:1] != "<" and os.path.realpath(m.group(1)) in wanted
            continue
        if inside:
            keep.append(line)
    if not keep:
        die(f"no line of {headers} survived preprocessing; is --cuda-home right?")
    return "\n".join(keep)


def parse_functions(text):
    """[(ret, name, [(decl, argname)])] in declaration order, first declaration of each name."""
    decl_re = re.compile(
        r"^(?:extern\s+)?(?P<ret>[A-Za-z_][\w\s\*]*?)\s*\b(?P<name>cuda[A-Za-z_]\w*)\s*"
        r"\((?P<params>.*)\)$", re.S)
    seen, out = set(), []
    for stmt in top_level_statements(text):
        s = norm_ws(stmt[:-1])
        s = re.sub(r"__attribute__\s*\(\(.*?\)\)", "", s).strip()
        if not s or s.startswith("typedef") or "{" in s:
            continue
        m = decl_re.match(s)
        if not m:
            continue
        ret, name = norm_ws(m.group("ret")), m.group("name")
        if name in seen:
            continue
        raw = split_params(m.group("params"))
        if raw in (["void"], [""]):
            raw = []
        if "..." in raw:
            die(f"{name} takes varargs; the stub generator cannot forward it")
        params = []
        for i, p in enumerate(raw):
            n = param_name(p)
            if n is None:
                n = f"a{i}"
                p = insert_param_name(p, n)
            params.append((p, n))
        seen.add(name)
        out.append((ret, name, params))
    return out


def parse_errors(include_dir):
    """[(name, value, description)] of enum cudaError, from driver_types.h's text."""
    path = os.path.join(include_dir, "driver_types.h")
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    m = re.search(r"enum\s+__device_builtin__\s+cudaError\s*\{(.*?)\};", text, re.S)
    if not m:
        die(f"enum cudaError not found in {path}")
    body = m.group(1)
    out = []
    for em in re.finditer(r"(/\*\*(?:.*?)\*/)?\s*(cuda\w+)\s*=\s*(\d+)", body, re.S):
        doc, name, value = em.group(1) or "", em.group(2), int(em.group(3))
        doc = re.sub(r"^/\*\*|\*/$", "", doc.strip())
        doc = norm_ws(re.sub(r"^\s*\*", " ", doc, flags=re.M))
        doc = re.sub(r"\\(?:ref|p|c|deprecated)\s+|::", "", doc)
        # The first sentence is the description.
        first = re.split(r"(?<=[a-z0-9)])\.\s", doc + " ", maxsplit=1)[0].rstrip(". ")
        out.append((name, value, first or name))
    if len(out) < 50:
        die(f"only {len(out)} cudaError values parsed from {path}")
    return out


def parse_cu_max(include_dir):
    path = os.path.join(include_dir, "cuda.h")
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    vals = [int(v) for v in re.findall(r"^\s*CUDA_ERROR_\w+\s*=\s*(\d+)", text, re.M)]
    if not vals:
        die(f"no CUDA_ERROR_ values in {path}")
    return max(vals)


def c_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def emit_stubs(funcs, head):
    out = [head, """/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fallback for every CUDA runtime function: a weak definition that logs its name once (via
 * gf_cudart__unsupported) and returns cudaErrorNotSupported. src/cudart/ defines the functions it
 * implements as strong symbols in the same libcudart.so.13, which override these at link time.
 */
#ifndef __CUDA_API_VERSION_INTERNAL
#define __CUDA_API_VERSION_INTERNAL 1
#endif
#include <cuda_runtime_api.h>
#include <cuda_profiler_api.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

void gf_cudart__unsupported(const char *symbol);

#define GF_CUDART_STUB __attribute__((weak, visibility("default")))
"""]
    for ret, name, params in funcs:
        decls = "(" + ", ".join(d for d, _ in params) + ")" if params else "(void)"
        body = [f"    (void){a};" for _, a in params]
        body.append(f'    gf_cudart__unsupported("{name}");')
        if ret == "cudaError_t":
            body.append("    return cudaErrorNotSupported;")
        elif ret != "void":
            body.append(f"    {ret} zero_;\n    __builtin_memset(&zero_, 0, sizeof zero_);\n    return zero_;")
        out.append(f"GF_CUDART_STUB {ret} {name}{decls}\n{{\n" + "\n".join(body) + "\n}\n")
    return "\n".join(out)


def emit_lds(names, head):
    out = [head, f"/* Every export under the version node {VERSION_NODE}, as in NVIDIA's libcudart.so.13. */",
           f"{VERSION_NODE} {{", "  global:"]
    out += [f"    {n};" for n in sorted(names)]
    out += ["  local:", "    *;", "};", ""]
    return "\n".join(out)


def emit_errors(errors, cu_max, head):
    out = [head, """/* SPDX-License-Identifier: Apache-2.0 */
/* Every enum cudaError value: GF_CUDART_ERR(name, value, "description from driver_types.h").
 * Define GF_CUDART_ERR, then include; it is #undef'd at the end. */"""]
    out.append(f"#ifndef GF_CUDART_CU_MAX\n#define GF_CUDART_CU_MAX {cu_max}\n#endif")
    out.append("#ifdef GF_CUDART_ERR")
    for name, value, desc in errors:
        out.append(f"GF_CUDART_ERR({name}, {value}, {c_str(desc)})")
    out.append("#undef GF_CUDART_ERR\n#endif\n")
    return "\n".join(out)


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description="Generate gpufuse's CUDA runtime export surface.")
    ap.add_argument("--cuda-home", default=os.environ.get("CUDA_HOME", "/usr/local/cuda"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--cc", default=os.environ.get("CC") or "cc")
    args = ap.parse_args()
    inc = os.path.join(args.cuda_home, "include")
    m = re.search(r"#define\s+CUDART_VERSION\s+(\d+)",
                  open(os.path.join(inc, "cuda_runtime_api.h"), encoding="utf-8").read())
    if not m:
        die(f"CUDART_VERSION not found in {inc}/cuda_runtime_api.h")
    version = m.group(1)
    funcs = parse_functions(preprocess(args.cc, inc, HEADERS))
    if len(funcs) < 300:
        die(f"only {len(funcs)} runtime functions parsed; the header layout changed")
    names = [n for _, n, _ in funcs]
    dup = set(names) & set(REGISTRATION)
    if dup:
        die(f"registration entry points now declared in a C header: {sorted(dup)}; drop them from REGISTRATION")
    errors = parse_errors(inc)
    head = f"/* GENERATED by {GENERATOR} from {inc}/cuda_runtime_api.h (CUDART_VERSION {version}) \u2014 do not edit. */"
    os.makedirs(args.out, exist_ok=True)
    write(os.path.join(args.out, "cudart_stubs.c"), emit_stubs(funcs, head))
    write(os.path.join(args.out, "cudart_exports.lds"), emit_lds(names + REGISTRATION, head))
    write(os.path.join(args.out, "cudart_errors.h"), emit_errors(errors, parse_cu_max(inc), head))
    write(os.path.join(args.out, "cudart_names.txt"), "\n".join(sorted(names + REGISTRATION)) + "\n")
    print(f"gen_cudart_api.py: {len(funcs)} runtime functions + {len(REGISTRATION)} registration "
          f"entry points, {len(errors)} error codes (CUDART_VERSION {version}) -> {args.out}")


if __name__ == "__main__":
    main()
