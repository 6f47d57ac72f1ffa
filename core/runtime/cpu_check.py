"""Can this machine run an artifact's code? Its architecture and CPU features.

model.json records the triple, cpu and LLVM feature string the code was built
for. Before a host library is loaded, the features it needs are compared with
what this CPU offers, so a missing one is an ArtifactError naming it rather
than a SIGILL in the middle of a run.

- x86-64: the `cpuid` instruction (and `xgetbv`, since AVX and AVX-512 need the
  OS to save their registers), run from a few bytes of machine code. Not
  /proc/cpuinfo: under an emulator (qemu-x86_64 -cpu Haswell) that file shows
  the real host's flags, while cpuid answers for the emulated CPU. Where
  executable memory is refused (a hardened kernel), /proc/cpuinfo is read.
- aarch64: the kernel's hwcaps (getauxval(AT_HWCAP / AT_HWCAP2)).

Only numpy-free standard library code: this runs in a runtime-only install.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import platform

from ..errors import ArtifactError

# LLVM feature name -> (cpuid leaf, subleaf, register 0..3 = eax ebx ecx edx, bit)
_X86_CPUID: dict[str, tuple[int, int, int, int]] = {
    **{n: (1, 0, 3, b) for n, b in [("cx8", 8), ("cmov", 15), ("mmx", 23), ("fxsr", 24),
                                    ("sse", 25), ("sse2", 26)]},
    **{n: (1, 0, 2, b) for n, b in [("sse3", 0), ("pclmul", 1), ("ssse3", 9), ("fma", 12),
                                    ("cx16", 13), ("sse4.1", 19), ("sse4.2", 20),
                                    ("crc32", 20), ("movbe", 22), ("popcnt", 23), ("aes", 25),
                                    ("xsave", 26), ("avx", 28), ("f16c", 29), ("rdrnd", 30)]},
    **{n: (7, 0, 1, b) for n, b in [("fsgsbase", 0), ("sgx", 2), ("bmi", 3), ("hle", 4),
                                    ("avx2", 5), ("bmi2", 8), ("invpcid", 10), ("rtm", 11),
                                    ("avx512f", 16), ("evex512", 16), ("avx512dq", 17),
                                    ("rdseed", 18), ("adx", 19), ("avx512ifma", 21),
                                    ("clflushopt", 23), ("clwb", 24), ("avx512cd", 28),
                                    ("sha", 29), ("avx512bw", 30), ("avx512vl", 31)]},
    **{n: (7, 0, 2, b) for n, b in [("prefetchwt1", 0), ("avx512vbmi", 1), ("pku", 3),
                                    ("waitpkg", 5), ("avx512vbmi2", 6), ("shstk", 7),
                                    ("gfni", 8), ("vaes", 9), ("vpclmulqdq", 10),
                                    ("avx512vnni", 11), ("avx512bitalg", 12),
                                    ("avx512vpopcntdq", 14), ("rdpid", 22), ("kl", 23),
                                    ("cldemote", 25), ("movdiri", 27), ("movdir64b", 28),
                                    ("enqcmd", 29)]},
    **{n: (7, 0, 3, b) for n, b in [("uintr", 5), ("avx512vp2intersect", 8),
                                    ("serialize", 14), ("tsxldtrk", 16), ("pconfig", 18),
                                    ("amx-bf16", 22), ("avx512fp16", 23), ("amx-tile", 24),
                                    ("amx-int8", 25)]},
    **{n: (7, 1, 0, b) for n, b in [("avxvnni", 4), ("avx512bf16", 5), ("cmpccxadd", 7),
                                    ("amx-fp16", 21), ("hreset", 22), ("avxifma", 23)]},
    **{n: (7, 1, 3, b) for n, b in [("avxvnniint8", 4), ("avxneconvert", 5),
                                    ("prefetchi", 14)]},
    **{n: (0xD, 1, 0, b) for n, b in [("xsaveopt", 0), ("xsavec", 1), ("xsaves", 3)]},
    **{n: (0x80000001, 0, 2, b) for n, b in [("sahf", 0), ("lzcnt", 5), ("sse4a", 6),
                                             ("prfchw", 8), ("xop", 11), ("fma4", 16),
                                             ("tbm", 21), ("mwaitx", 29)]},
    "64bit": (0x80000001, 0, 3, 29),
    **{n: (0x80000008, 0, 1, b) for n, b in [("clzero", 0), ("wbnoinvd", 9)]},
}

# Register state the OS must save (XCR0 bits) before these instructions work:
# a CPU can have AVX-512 while the kernel leaves it off.
_XCR0_YMM, _XCR0_ZMM, _XCR0_AMX = 0x6, 0xE6, 0x60000
_YMM_FEATURES = {"avx", "avx2", "fma", "f16c", "fma4", "xop", "vaes", "vpclmulqdq", "avxvnni",
                 "avxifma", "avxvnniint8", "avxneconvert"}

# /proc/cpuinfo spells some flags differently (the fallback reader)
_CPUINFO_NAMES = {"sse3": "pni", "pclmul": "pclmulqdq", "sse4.1": "sse4_1", "sse4.2": "sse4_2",
                  "crc32": "sse4_2", "rdrnd": "rdrand", "bmi": "bmi1", "evex512": "avx512f",
                  "sha": "sha_ni", "lzcnt": "abm", "sahf": "lahf_lm", "prfchw": "3dnowprefetch",
                  "64bit": "lm", "avxvnni": "avx_vnni", "avx512vnni": "avx512_vnni",
                  "avx512bf16": "avx512_bf16", "avx512vbmi2": "avx512_vbmi2",
                  "avx512bitalg": "avx512_bitalg", "avx512vpopcntdq": "avx512_vpopcntdq",
                  "avx512fp16": "avx512_fp16", "avx512vp2intersect": "avx512_vp2intersect",
                  "amx-bf16": "amx_bf16", "amx-tile": "amx_tile", "amx-int8": "amx_int8",
                  "kl": "keylocker", "shstk": "user_shstk"}

# LLVM feature name -> (getauxval type: 16 AT_HWCAP, 26 AT_HWCAP2; bit)
_AARCH64_HWCAP: dict[str, tuple[int, int]] = {
    **{n: (16, b) for n, b in [("fp-armv8", 0), ("neon", 1), ("aes", 3), ("sha2", 6),
                               ("crc", 7), ("lse", 8), ("fullfp16", 9), ("rdm", 12),
                               ("jsconv", 13), ("complxnum", 14), ("rcpc", 15), ("sha3", 17),
                               ("sm4", 19), ("dotprod", 20), ("sve", 22), ("fp16fml", 23),
                               ("flagm", 27)]},
    **{n: (26, b) for n, b in [("sve2", 1), ("sve2-aes", 2), ("sve2-bitperm", 4),
                               ("sve2-sha3", 5), ("sve2-sm4", 6), ("i8mm", 13), ("bf16", 14)]},
}

# Features that compiled arithmetic never uses: LLVM emits their instructions only
# through explicit intrinsics (system, security, random numbers, cache control),
# which tinyc's kernels do not call. Requiring them would refuse artifacts on CPUs
# that run them fine, e.g. a host artifact moved between two AVX-512 machines.
_NEVER_EMITTED = {
    "x86_64": {"xsave", "xsaveopt", "xsavec", "xsaves", "fsgsbase", "invpcid", "rdrnd",
               "rdseed", "rdpid", "shstk", "clflushopt", "clwb", "clzero", "sgx", "pku",
               "waitpkg", "movdiri", "movdir64b", "enqcmd", "serialize", "uintr", "hreset",
               "wbnoinvd", "pconfig", "kl", "cldemote", "tsxldtrk", "mwaitx", "rtm", "hle",
               "prfchw", "prefetchwt1", "prefetchi"},
    "aarch64": {"flagm", "rcpc"},
}

# What a named LLVM cpu implies beyond the listed features, for the cpus tinyc's
# specs use and the x86-64 levels: code for `cpu: haswell` may use movbe or lzcnt
# although the spec lists only +avx2,+fma... Unknown cpus add nothing (their
# explicit features are still checked; a host build lists all of its features).
_V2 = {"cx16", "sahf", "popcnt", "sse3", "sse4.1", "sse4.2", "ssse3"}
_V3 = _V2 | {"avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe"}
_V4 = _V3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
_CPU_IMPLIES = {"x86-64-v2": _V2, "x86-64-v3": _V3, "x86-64-v4": _V4,
                "haswell": _V3, "broadwell": _V3 | {"adx"}, "skylake": _V3 | {"adx"},
                "skylake-avx512": _V4 | {"adx"}, "cascadelake": _V4 | {"adx", "avx512vnni"}}


def required_features(meta: dict) -> list[str]:
    """The CPU features an artifact's code may use, in LLVM's names, sorted."""
    listed = [f.strip()[1:] for f in str(meta.get("features") or "").split(",")
              if f.strip().startswith("+")]
    wanted = set(listed) | _CPU_IMPLIES.get(str(meta.get("cpu", "")), set())
    return sorted(wanted - _NEVER_EMITTED.get(triple_arch(meta.get("triple", "")), set()))


def triple_arch(triple: str) -> str:
    arch = triple.split("-", 1)[0]
    return {"arm64": "aarch64", "amd64": "x86_64"}.get(arch, arch)


def machine_arch() -> str:
    return triple_arch(platform.machine().lower())


def check_can_run(meta: dict, where: str) -> None:
    """Raise ArtifactError if the code described by `meta` (model.json) cannot run on
    this machine. Artifacts that predate these fields record no features: nothing
    to check beyond the architecture."""
    triple = meta.get("triple")
    if not triple:
        return
    arch, here = triple_arch(triple), machine_arch()
    if arch != here:
        raise ArtifactError(f"{where}: the artifact was compiled for {triple} "
                            f"(target {meta.get('target', '?')}); this machine is {here}")
    have = host_features(arch)
    if have is None:
        return  # no reader for this architecture: the architecture check is all we can do
    missing = [f for f in required_features(meta) if f in _readable(arch) and f not in have]
    if missing:
        raise ArtifactError(
            f"{where}: this CPU lacks {', '.join(missing)}, which the artifact's code uses "
            f"(target {meta.get('target', '?')}, cpu {meta.get('cpu', '?')}); compile it "
            f"for this CPU or for a target it supports (tinyc targets lists them)")


def _readable(arch: str) -> set[str]:
    return set(_X86_CPUID if arch == "x86_64" else _AARCH64_HWCAP)


def host_features(arch: str) -> frozenset[str] | None:
    """This CPU's features in LLVM's names (None: no reader for `arch`)."""
    if arch == "x86_64":
        return x86_features()
    if arch == "aarch64":
        return aarch64_features()
    return None


@functools.cache
def x86_features() -> frozenset[str]:
    try:
        cpuid, xgetbv = _x86_instructions()
    except OSError:  # no executable memory here: the kernel's view instead
        return x86_features_from_cpuinfo(_read_cpuinfo())
    return x86_features_from_cpuid(cpuid, xgetbv)


def x86_features_from_cpuid(cpuid, xgetbv) -> frozenset[str]:
    """Decode cpuid(leaf, subleaf) -> (eax, ebx, ecx, edx) and xgetbv(0) -> XCR0."""
    max_basic, max_ext = cpuid(0, 0)[0], cpuid(0x80000000, 0)[0]
    max_sub7 = cpuid(7, 0)[0] if max_basic >= 7 else 0
    osxsave = bool(cpuid(1, 0)[2] >> 27 & 1)
    xcr0 = xgetbv(0) if osxsave else 0

    def present(leaf: int, sub: int) -> bool:
        if leaf >= 0x80000000:
            return leaf <= max_ext
        return leaf <= max_basic and (leaf != 7 or sub <= max_sub7)

    regs = {key: cpuid(*key) for key in {(leaf, sub) for leaf, sub, _, _ in _X86_CPUID.values()}
            if present(*key)}
    found = {name for name, (leaf, sub, reg, bit) in _X86_CPUID.items()
             if (leaf, sub) in regs and regs[leaf, sub][reg] >> bit & 1}
    return frozenset(f for f in found if _os_saves_registers(f, xcr0))


def _os_saves_registers(feature: str, xcr0: int) -> bool:
    if feature.startswith("avx512") or feature == "evex512":
        return xcr0 & _XCR0_ZMM == _XCR0_ZMM
    if feature.startswith("amx-"):
        return xcr0 & _XCR0_AMX == _XCR0_AMX
    if feature in _YMM_FEATURES:
        return xcr0 & _XCR0_YMM == _XCR0_YMM
    return True


def x86_features_from_cpuinfo(text: str) -> frozenset[str]:
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            break
    return frozenset(n for n in _X86_CPUID if _CPUINFO_NAMES.get(n, n) in flags)


def _read_cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# System V x86-64 machine code (see the assembly beside each):
_CPUID_CODE = bytes.fromhex(
    "53"          # push rbx                (cpuid overwrites rbx, a callee-saved register)
    "89f8"        # mov eax, edi            leaf
    "89f1"        # mov ecx, esi            subleaf
    "4989d0"      # mov r8, rdx             out: uint32[4]
    "0fa2"        # cpuid
    "418900"      # mov [r8], eax
    "41895804"    # mov [r8+4], ebx
    "41894808"    # mov [r8+8], ecx
    "4189500c"    # mov [r8+12], edx
    "5b"          # pop rbx
    "c3")         # ret
_XGETBV_CODE = bytes.fromhex(
    "89f9"        # mov ecx, edi            which XCR
    "0f01d0"      # xgetbv                  -> edx:eax
    "48c1e220"    # shl rdx, 32
    "4809d0"      # or rax, rdx
    "c3")         # ret


def _x86_instructions():
    """cpuid and xgetbv as Python functions: the code is copied into a private page
    that is made executable (never writable and executable at once)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype, libc.mmap.argtypes = ctypes.c_void_p, [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
        ctypes.c_long]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    page = libc.mmap(None, mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_WRITE,
                     mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    if page in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap failed")
    code = _CPUID_CODE + _XGETBV_CODE
    ctypes.memmove(page, code, len(code))
    if libc.mprotect(page, mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
        raise OSError(ctypes.get_errno(), "mprotect(PROT_EXEC) refused")
    # the page stays mapped: the functions live for the process (x86_features is cached)
    raw_cpuid = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32,
                                 ctypes.POINTER(ctypes.c_uint32))(page)
    raw_xgetbv = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint32)(page + len(_CPUID_CODE))

    def cpuid(leaf: int, sub: int) -> tuple[int, int, int, int]:
        out = (ctypes.c_uint32 * 4)()
        raw_cpuid(leaf, sub, out)
        return tuple(out)

    return cpuid, lambda xcr: int(raw_xgetbv(xcr))


@functools.cache
def aarch64_features() -> frozenset[str]:
    getauxval = ctypes.CDLL(None).getauxval
    getauxval.restype, getauxval.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
    return aarch64_features_from_hwcaps({16: getauxval(16), 26: getauxval(26)})


def aarch64_features_from_hwcaps(hwcaps: dict[int, int]) -> frozenset[str]:
    """Decode {AT_HWCAP: bits, AT_HWCAP2: bits} into LLVM feature names."""
    return frozenset(n for n, (which, bit) in _AARCH64_HWCAP.items()
                     if hwcaps.get(which, 0) >> bit & 1)
