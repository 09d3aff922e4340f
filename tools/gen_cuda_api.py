#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generate gpufuse's CUDA driver API surface from the toolkit's cuda.h and cudaTypedefs.h.

This is the one source of truth for the driver API table (STYLE.md habit 6). It writes, into --out:

  cuda_api.h        X-macro list GF_CUDA_FN(symbol, ret, (param decls), (arg names)) of every
                    function cuda.h declares under __CUDA_API_VERSION_INTERNAL, i.e. every symbol the
                    real libcuda.so.1 exports from cuda.h: the old unversioned ABIs (cuMemAlloc with
                    unsigned int), the _v2/_v3/_v4 ones and the _ptds/_ptsz per-thread variants.
  cuda_procaddr.h   gf_cuda_procaddr_table[]: cuGetProcAddress's (name, version, stream flavor)
                    -> exported symbol map, one row per PFN_<name>_v<ver>[_ptds|_ptsz] typedef in
                    cudaTypedefs.h, sorted by name then version.
  sim_stubs.c       a weak stub per function for the sim (returns CUDA_ERROR_NOT_SUPPORTED).
  cuda_exports.lds  a linker version script exporting exactly those symbols.

Usage: python3 tools/gen_cuda_api.py --cuda-home /usr/local/cuda --out build/gen

How it parses: cuda.h is run through the C preprocessor (`$CC -E -D__CUDA_API_VERSION_INTERNAL`),
which expands CUDAAPI and __CUDA_DEPRECATED away and applies cuda.h's own renaming macros
(`#define cuMemAlloc cuMemAlloc_v2` on the main declarations, `#undef`'d before the legacy block),
so the text we parse names the exported symbols exactly as the compiler sees them. Line markers
keep only declarations that come from cuda.h itself. cudaTypedefs.h is scanned as plain text (not
preprocessed) so the PFN typedefs inside `#if defined(__CUDA_API_VERSION_INTERNAL)` are kept too.

The cuGetProcAddress symbol rule (checked against cuda.h on every run; any mismatch is fatal):
  * For a name, sort its plain (non-_ptds/_ptsz) PFN versions ascending; the i-th (0-based) maps
    to `name` for i == 0 and `name_v{i+1}` otherwise. cuCtxCreate: v2000 -> cuCtxCreate,
    v3020 -> cuCtxCreate_v2, v11040 -> cuCtxCreate_v3, v12050 -> cuCtxCreate_v4.
  * A _ptds/_ptsz row of version V maps to the symbol of the greatest plain version <= V plus the
    suffix: cuMemcpyHtoD_v7000_ptds -> cuMemcpyHtoD_v2_ptds (plain: v2000, v3020).
  * Cross-checks: every mapped symbol must be declared by cuda.h, every cuda.h function must be
    reached by some row, the newest plain symbol of a name must equal the target of cuda.h's
    `#define name name_vN` (when there is one), and -- unless --no-verify -- the compiler checks
    that each PFN typedef is the exact type of &symbol (__builtin_types_compatible_p).
  * Special cases found in CUDA 13.0 (13000): none break the rule. Worth knowing:
      - The legacy ABIs (cuMemAlloc with unsigned int, cuCtxCreate v1..v3, cuStreamBeginCapture
        v1, cuStreamGetCaptureInfo v1/v2, cuMemcpyBatchAsync v1, ...) have their PFN typedefs
        only inside `#if defined(__CUDA_API_VERSION_INTERNAL)` in cudaTypedefs.h: a preprocessed
        scan without that define would shift every index and map cuMemAlloc@3020 to cuMemAlloc.
      - 47 _ptds/_ptsz rows carry version 7000 (when per-thread default streams appeared) while
        their ABI is an older plain version's: cuMemcpyHtoD_v7000_ptds is cuMemcpyHtoD_v2 (v3020)
        + _ptds, cuLaunchKernel_v7000_ptsz is cuLaunchKernel (v4000) + _ptsz,
        cuMemsetD8Async_v7000_ptsz is cuMemsetD8Async (v3020) + _ptsz. So a flavored row's version
        is not the version of the plain row it shadows; the "greatest plain version <= V" rule
        handles it, and cuMemcpyHtoD asked below 7000 has no per-thread variant at all.
      - 12 names have a _ptds/_ptsz variant for several ABIs (cuStreamBeginCapture_ptsz and
        cuStreamBeginCapture_v2_ptsz; cuStreamGetCaptureInfo{,_v2,_v3}_ptsz; cuMemPrefetchAsync,
        cuMemcpyBatchAsync, cuStreamGetCtx, cuStreamWaitValue32, ...): same rule.
      - cuda.h's `#define cuGraphInstantiate cuGraphInstantiateWithFlags` is a source alias, not
        an ABI version: "cuGraphInstantiate" resolves through its own PFN rows (v10000 ->
        cuGraphInstantiate, v11000 -> cuGraphInstantiate_v2, both the 5-argument ABI) at every
        version, and cuGraphInstantiateWithFlags is a separate name (v11040). The rename
        cross-check only applies to `#define name name_vN`.
      - `#define cuGetProcAddress_v2 cuGetProcAddress_v2_ptsz` (CUDA_API_PER_THREAD_DEFAULT_STREAM
        builds only) is a static inline shim in cuda.h that ORs in
        CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM when flags is 0; libcuda exports no
        cuGetProcAddress_v2_ptsz. It confirms that flags 0 means the legacy stream to the driver.
      - 24 version bumps keep the C signature and change only behaviour (cuCtxDestroy_v2,
        cuStreamDestroy_v2, cuDevicePrimaryCtxRelease_v2, cuDeviceGetUuid_v2,
        cuEventElapsedTime_v2, cuStreamWaitValue32_v2, cuGraphInstantiate_v2, ...): they are
        distinct exported symbols, so the table keeps both, and no signature comparison can
        replace the version index. Others do change the signature (cuCtxSynchronize_v2 takes a
        CUcontext, cuMemAdvise_v2 a CUmemLocation).
    If a future toolkit breaks the rule, add the exception to SYMBOL_OVERRIDES below with a note.
"""

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

GENERATOR = "tools/gen_cuda_api.py"

# (name, version, suffix) -> symbol, for rows the index rule gets wrong. Empty for CUDA 13.0.
SYMBOL_OVERRIDES = {}

C_BUILTIN_TYPE_WORDS = {
    "void", "char", "short", "int", "long", "float", "double", "signed", "unsigned", "_Bool",
}
C_SKIP_WORDS = {"const", "volatile", "restrict", "struct", "enum", "union", "register"}


def die(msg):
    print(f"gen_cuda_api.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


def warn(msg):
    print(f"gen_cuda_api.py: warning: {msg}", file=sys.stderr)


def norm_ws(s):
    return re.sub(r"\s+", " ", s).strip()


class Func:
    def __init__(self, ret, name, params):
        self.ret = ret
        self.name = name
        self.params = params  # list of (decl text, arg name); empty list = (void)

    def param_decls(self):
        if not self.params:
            return "(void)"
        return "(" + ", ".join(d for d, _ in self.params) + ")"

    def arg_names(self):
        return "(" + ", ".join(a for _, a in self.params) + ")"


# ---------------------------------------------------------------------------------------------
# cuda.h


def preprocess_cuda_h(cc, include_dir):
    """Returns the preprocessed text of cuda.h's own lines (system headers dropped)."""
    cuda_h = os.path.realpath(os.path.join(include_dir, "cuda.h"))
    cmd = [cc, "-E", "-std=c11", "-D__CUDA_API_VERSION_INTERNAL", "-I", include_dir, "-x", "c", "-"]
    try:
        res = subprocess.run(cmd, input="#include <cuda.h>\n", capture_output=True, text=True)
    except OSError as e:
        die(f"cannot run the C preprocessor '{cc}': {e}; set CC or pass --cc")
    if res.returncode != 0:
        die(f"'{' '.join(cmd)}' failed:\n{res.stderr}")
    keep = []
    in_cuda_h = False
    for line in res.stdout.splitlines():
        m = re.match(r'#\s*\d+\s+"([^"]*)"', line)
        if m:
            in_cuda_h = os.path.realpath(m.group(1)) == cuda_h if m.group(1)[:1] != "<" else False
            continue
        if in_cuda_h:
            keep.append(line)
    if not keep:
        die(f"no line of {cuda_h} survived preprocessing; is --cuda-home right?")
    return "\n".join(keep)


def top_level_statements(text):
    """Splits C text into top-level statements ending at ';' outside braces and parentheses, or
    at the '}' closing a function body (cuda.h has static inline helpers in some modes)."""
    out, cur, depth, body = [], [], 0, False
    for ch in text:
        if ch == "{" and depth == 0:
            body = "".join(cur).rstrip().endswith(")")
        cur.append(ch)
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
            if ch == "}" and depth == 0 and body:
                out.append("".join(cur))
                cur, body = [], False
        elif ch == ";" and depth == 0:
            out.append("".join(cur))
            cur = []
    return out


def split_params(s):
    parts, cur, depth = [], [], 0
    for ch in s:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [norm_ws(p) for p in parts]


def param_name(decl):
    """Returns the declared name of a parameter, or None when it is unnamed."""
    m = re.search(r"\(\s*\*\s*(\w+)\s*\)\s*\(", decl)  # function pointer: ret (*name)(...)
    if m:
        return m.group(1)
    core = re.sub(r"\[[^\]]*\]", "", decl).strip()  # arrays: name[] -> name
    if core.endswith("*"):
        return None
    words = [w for w in re.findall(r"[A-Za-z_]\w*", core) if w not in C_SKIP_WORDS]
    if not words or words[-1] in C_BUILTIN_TYPE_WORDS or len(words) == 1:
        return None
    return words[-1]


def parse_functions(text):
    """Returns ({name: Func} in declaration order, [varargs names])."""
    funcs = collections.OrderedDict()
    varargs = []
    decl_re = re.compile(
        r"^(?:extern\s+)?(?P<ret>[A-Za-z_][\w\s\*]*?)\s*\b(?P<name>cu[A-Za-z_]\w*)\s*"
        r"\((?P<params>.*)\)$", re.S)
    for stmt in top_level_statements(text):
        s = norm_ws(stmt[:-1])
        s = re.sub(r"__attribute__\s*\(\(.*?\)\)", "", s).strip()
        if not s or s.startswith("typedef") or "{" in s:
            continue
        m = decl_re.match(s)
        if not m:
            continue
        ret, name = norm_ws(m.group("ret")), m.group("name")
        raw = split_params(m.group("params"))
        if raw == ["void"] or raw == [""]:
            raw = []
        if "..." in raw:
            varargs.append(name)
            continue
        params = []
        for i, p in enumerate(raw):
            n = param_name(p)
            if n is None:
                n = f"a{i}"
                p = insert_param_name(p, n)
            params.append((p, n))
        f = Func(ret, name, params)
        if name in funcs:
            old = funcs[name]
            if (old.ret, [d for d, _ in old.params]) != (f.ret, [d for d, _ in f.params]):
                warn(f"{name} is declared twice with different signatures; keeping the first")
            continue
        funcs[name] = f
    return funcs, varargs


def insert_param_name(decl, name):
    if "[" in decl:
        i = decl.index("[")
        return decl[:i].rstrip() + " " + name + decl[i:]
    if re.search(r"\(\s*\*\s*\)", decl):
        return re.sub(r"\(\s*\*\s*\)", f"(*{name})", decl, count=1)
    return decl + ("" if decl.endswith("*") else " ") + name


def parse_rename_macros(path):
    """`#define cuX cuX_vN` / `__CUDA_API_PTDS(cuX_vN)` at the top of cuda.h: name -> newest plain symbol."""
    out = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"\s*#\s*define\s+(cu\w+)\s+(?:__CUDA_API_PT(?:DS|SZ)\(\s*)?(cu\w+)\s*\)?\s*$",
                         line)
            if m:
                out.setdefault(m.group(1), m.group(2))
    return out


# ---------------------------------------------------------------------------------------------
# cudaTypedefs.h -> cuGetProcAddress table


def parse_pfn_typedefs(path):
    with open(path) as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    rows = re.findall(r"\*\s*PFN_(\w+?)_v(\d+)(_ptds|_ptsz)?\s*\)", text)
    if not rows:
        die(f"no PFN_<name>_v<version> typedef found in {path}")
    seen, out = set(), []
    for name, ver, suf in rows:
        key = (name, int(ver), suf)
        if key in seen:
            warn(f"PFN_{name}_v{ver}{suf} is typedef'd twice in {path}")
            continue
        seen.add(key)
        out.append(key)
    return out


def build_procaddr_table(pfns, funcs, renames):
    plain = collections.defaultdict(list)
    for name, ver, suf in pfns:
        if not suf:
            plain[name].append(ver)
    for v in plain.values():
        v.sort()
    rows, errors = [], []
    for name, ver, suf in pfns:
        if (name, ver, suf) in SYMBOL_OVERRIDES:
            sym = SYMBOL_OVERRIDES[(name, ver, suf)]
        else:
            older = [v for v in plain.get(name, []) if v <= ver]
            if not older:
                errors.append(f"PFN_{name}_v{ver}{suf}: no plain version of {name} <= {ver} to map onto")
                continue
            i = plain[name].index(older[-1])
            sym = (name if i == 0 else f"{name}_v{i + 1}") + suf
        if sym not in funcs:
            errors.append(f"PFN_{name}_v{ver}{suf} maps to {sym}, which cuda.h does not declare")
        rows.append((name, ver, suf, sym))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))

    # cuda.h's `#define name name_vN` names the newest ABI: it must be the newest plain row's symbol.
    # A target that is not `name` or `name_vN` is a source-level alias, not an ABI version:
    # `#define cuGraphInstantiate cuGraphInstantiateWithFlags` (CUDA 12+). cuGetProcAddress still
    # answers "cuGraphInstantiate" with the PFN rows (v10000, v11000: the 5-argument ABI).
    for name, target in renames.items():
        if name in plain and target != name and re.fullmatch(re.escape(name) + r"_v\d+", target):
            newest = [r[3] for r in rows if r[0] == name and not r[2]][-1]
            if newest != target:
                errors.append(f"cuda.h says #define {name} {target}, the table's newest {name} is {newest}")
    reached = {r[3] for r in rows}
    for fn in funcs:
        if fn not in reached:
            warn(f"{fn} is declared in cuda.h but no PFN typedef reaches it through cuGetProcAddress")
    for e in errors:
        warn(e)
    if errors:
        die(f"{len(errors)} cuGetProcAddress rows do not match cuda.h; add the exceptions to "
            "SYMBOL_OVERRIDES in tools/gen_cuda_api.py with a note on why")
    return rows


def verify_with_compiler(cc, include_dir, rows, funcs):
    """Checks with the compiler that every PFN typedef is the exact type of &symbol."""
    lines = ["#define __CUDA_API_VERSION_INTERNAL 1", "#include <cudaTypedefs.h>"]
    for name, ver, suf, sym in rows:
        lines.append(f"_Static_assert(__builtin_types_compatible_p(PFN_{name}_v{ver}{suf}, "
                     f"__typeof__(&{sym})), \"PFN_{name}_v{ver}{suf} is not the type of {sym}\");")
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "verify.c")
        with open(src, "w") as f:
            f.write("\n".join(lines) + "\n")
        cmd = [cc, "-std=c11", "-fsyntax-only", "-Wno-deprecated-declarations", "-I", include_dir, src]
        res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        bad = re.findall(r'static assertion failed: "([^"]*)"', res.stderr)
        for b in bad:
            warn(b)
        die(f"ABI check of the cuGetProcAddress table failed ({len(bad)} rows):\n"
            + (res.stderr if not bad else ""))


# ---------------------------------------------------------------------------------------------
# Output


def banner(cuda_h, cuda_version, c_comment=True):
    text = f"GENERATED by {GENERATOR} from {cuda_h} (CUDA_VERSION {cuda_version}) \u2014 do not edit."
    return f"/* {text} */" if c_comment else f"# {text}"


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def emit_cuda_api_h(funcs, head):
    out = [head, """/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every function cuda.h declares under __CUDA_API_VERSION_INTERNAL, i.e. every driver API symbol
 * libcuda.so.1 exports: GF_CUDA_FN(symbol, return type, (parameter declarations), (argument names)).
 *
 * Use as an X-macro: define GF_CUDA_FN, then include this file; it #undefs GF_CUDA_FN at the end,
 * so it can be included again with another definition. Included without GF_CUDA_FN it only
 * defines GF_CUDA_FN_COUNT and GF_CUDA_API_VERSION.
 *
 * A file that also includes <cuda.h> must define __CUDA_API_VERSION_INTERNAL before it: otherwise
 * cuda.h leaves macros such as `#define cuMemAlloc cuMemAlloc_v2` active, which would rename the
 * symbols below, and it does not declare the legacy ABIs at all.
 */
#ifndef GF_CUDA_API_H
#define GF_CUDA_API_H"""]
    out.append(f"#define GF_CUDA_FN_COUNT {len(funcs)}")
    out.append(f"#define GF_CUDA_API_VERSION {CUDA_VERSION}")
    out.append("""#endif /* GF_CUDA_API_H */

#if defined(__cuda_cuda_h__) && !defined(__CUDA_API_VERSION_INTERNAL)
#error "cuda_api.h: include <cuda.h> with __CUDA_API_VERSION_INTERNAL defined (its renaming macros would rewrite this list)"
#endif

#ifdef GF_CUDA_FN""")
    for f in funcs.values():
        out.append(f"GF_CUDA_FN({f.name}, {f.ret}, {f.param_decls()}, {f.arg_names()})")
    out.append("#undef GF_CUDA_FN\n#endif /* GF_CUDA_FN */\n")
    return "\n".join(out)


def emit_sim_stubs(funcs, head):
    out = [head, """/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sim's fallback for every driver API symbol: a weak definition that logs the name once (via
 * gf_sim_unsupported) and returns CUDA_ERROR_NOT_SUPPORTED. The sim's real implementations are
 * strong definitions in other objects of the same libcuda.so.1 and override these at link time.
 */
#ifndef __CUDA_API_VERSION_INTERNAL
#define __CUDA_API_VERSION_INTERNAL 1
#endif
#include <cuda.h>

void gf_sim_unsupported(const char *symbol);

#define GF_SIM_STUB __attribute__((weak, visibility("default")))
"""]
    for f in funcs.values():
        body = [f"    (void){a};" for _, a in f.params]
        body.append(f'    gf_sim_unsupported("{f.name}");')
        if f.ret == "CUresult":
            body.append("    return CUDA_ERROR_NOT_SUPPORTED;")
        elif f.ret != "void":
            body.append(f"    return ({f.ret})0;")
        out.append(f"GF_SIM_STUB {f.ret} {f.name}{f.param_decls()}\n{{\n" + "\n".join(body) + "\n}\n")
    return "\n".join(out)


def emit_lds(funcs, head):
    out = [head, "/* Exports exactly the driver API symbols of cuda_api.h, unversioned like NVIDIA's libcuda. */",
           "{", "  global:"]
    out += [f"    {name};" for name in sorted(funcs)]
    out += ["  local:", "    *;", "};", ""]
    return "\n".join(out)


def emit_procaddr_h(rows, head):
    out = [head, """/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cuGetProcAddress's map from (name, CUDA version, stream flavor) to the exported symbol, one row
 * per PFN_<name>_v<version>[_ptds|_ptsz] typedef of cudaTypedefs.h, sorted by name then version
 * (strcmp order, then ascending version, plain before _ptds/_ptsz). Look rows up with
 * gf_cuda_procaddr_resolve() (include/gpufuse/cuda_procaddr.h) rather than by hand.
 */
#ifndef GF_CUDA_PROCADDR_TABLE_H
#define GF_CUDA_PROCADDR_TABLE_H

#ifndef GF_CUDA_PROCADDR_TYPES
#define GF_CUDA_PROCADDR_TYPES
enum gf_cuda_proc_flavor {
    GF_PROC_NONE = 0, /* legacy default stream: the plain symbol */
    GF_PROC_PTDS = 1, /* per-thread default stream, synchronous call: symbol ends in _ptds */
    GF_PROC_PTSZ = 2, /* per-thread default stream, async call: symbol ends in _ptsz */
};

struct gf_cuda_procaddr {
    const char *name;  /* the base name cuGetProcAddress is asked for */
    int version;       /* the CUDA version that introduced this ABI (PFN_<name>_v<version>) */
    int stream_flavor; /* enum gf_cuda_proc_flavor */
    const char *symbol; /* the exported function that implements it */
};
#endif /* GF_CUDA_PROCADDR_TYPES */
"""]
    out.append(f"#define GF_CUDA_PROCADDR_COUNT {len(rows)}\n")
    out.append("static const struct gf_cuda_procaddr gf_cuda_procaddr_table[] = {")
    flavor = {"": "GF_PROC_NONE", "_ptds": "GF_PROC_PTDS", "_ptsz": "GF_PROC_PTSZ"}
    for name, ver, suf, sym in rows:
        out.append(f'    {{ "{name}", {ver}, {flavor[suf]}, "{sym}" }},')
    out.append("};\n")
    out.append("static const unsigned gf_cuda_procaddr_count =\n"
               "    (unsigned)(sizeof gf_cuda_procaddr_table / sizeof gf_cuda_procaddr_table[0]);\n")
    out.append("#endif /* GF_CUDA_PROCADDR_TABLE_H */\n")
    return "\n".join(out)


CUDA_VERSION = 0


def main():
    global CUDA_VERSION
    ap = argparse.ArgumentParser(description="Generate gpufuse's CUDA driver API tables from cuda.h.")
    ap.add_argument("--cuda-home", default=os.environ.get("CUDA_HOME", "/usr/local/cuda"))
    ap.add_argument("--out", required=True, help="output directory (the Makefile uses build/gen)")
    ap.add_argument("--cc", default=os.environ.get("CC") or "cc", help="C compiler for -E and checks")
    ap.add_argument("--no-verify", action="store_true",
                    help="skip the compiler check of PFN typedefs against the mapped symbols")
    args = ap.parse_args()

    include_dir = os.path.join(args.cuda_home, "include")
    cuda_h = os.path.join(include_dir, "cuda.h")
    typedefs_h = os.path.join(include_dir, "cudaTypedefs.h")
    for p in (cuda_h, typedefs_h):
        if not os.path.isfile(p):
            die(f"{p} not found; pass --cuda-home pointing at a CUDA toolkit (headers are enough)")
    with open(cuda_h) as f:
        m = re.search(r"^\s*#\s*define\s+CUDA_VERSION\s+(\d+)", f.read(), re.M)
    if not m:
        die(f"no '#define CUDA_VERSION' in {cuda_h}")
    CUDA_VERSION = int(m.group(1))

    funcs, varargs = parse_functions(preprocess_cuda_h(args.cc, include_dir))
    for v in varargs:
        warn(f"{v} takes varargs; left out of the generated API")
    if len(funcs) < 100:
        die(f"only {len(funcs)} functions parsed from {cuda_h}; the parser is out of step with it")
    odd = [f.name for f in funcs.values() if f.ret != "CUresult"]
    if odd:
        warn(f"functions not returning CUresult (kept with their own type): {', '.join(odd)}")

    rows = build_procaddr_table(parse_pfn_typedefs(typedefs_h), funcs, parse_rename_macros(cuda_h))
    if not args.no_verify:
        verify_with_compiler(args.cc, include_dir, rows, funcs)

    os.makedirs(args.out, exist_ok=True)
    head = banner(cuda_h, CUDA_VERSION)
    write(os.path.join(args.out, "cuda_api.h"), emit_cuda_api_h(funcs, head))
    write(os.path.join(args.out, "cuda_procaddr.h"), emit_procaddr_h(rows, head))
    write(os.path.join(args.out, "sim_stubs.c"), emit_sim_stubs(funcs, head))
    write(os.path.join(args.out, "cuda_exports.lds"), emit_lds(funcs, head))
    print(f"gen_cuda_api.py: {len(funcs)} functions, {len(rows)} cuGetProcAddress rows "
          f"(CUDA_VERSION {CUDA_VERSION}) -> {args.out}")


if __name__ == "__main__":
    main()
