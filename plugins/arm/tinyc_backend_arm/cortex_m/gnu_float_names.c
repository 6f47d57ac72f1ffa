/* Floating-point helper routines under their GNU names, for Arm EABI builds.

   llvmlite's code for thumbv7em / thumbv8m calls the libgcc names (__divdf3,
   __extendsfdf2, __extendhfsf2, ...) where the FPU lacks an operation (double
   precision on an FPv4-SP core, half floats), while zig's compiler-rt for Arm
   EABI defines only the run-time ABI names (__aeabi_ddiv, __aeabi_f2d, ...).
   Each function here is the C operation, which clang turns into the __aeabi_
   call or an FPU instruction. All are weak: a toolchain that has the GNU names
   (libgcc, LLVM's compiler-rt) keeps its own. */

#define WEAK __attribute__((weak))

WEAK double __adddf3(double a, double b) { return a + b; }
WEAK double __subdf3(double a, double b) { return a - b; }
WEAK double __muldf3(double a, double b) { return a * b; }
WEAK double __divdf3(double a, double b) { return a / b; }
WEAK double __negdf2(double a) { return -a; }

WEAK double __extendsfdf2(float a) { return a; }
WEAK float __truncdfsf2(double a) { return (float)a; }
WEAK float __extendhfsf2(__fp16 a) { return a; }
WEAK __fp16 __truncsfhf2(float a) { return (__fp16)a; }
WEAK __fp16 __truncdfhf2(double a) { return (__fp16)a; }

WEAK long long __fixsfdi(float a) { return (long long)a; }
WEAK unsigned long long __fixunssfdi(float a) { return (unsigned long long)a; }
WEAK float __floatdisf(long long a) { return (float)a; }
WEAK float __floatundisf(unsigned long long a) { return (float)a; }

WEAK int __fixdfsi(double a) { return (int)a; }
WEAK unsigned __fixunsdfsi(double a) { return (unsigned)a; }
WEAK long long __fixdfdi(double a) { return (long long)a; }
WEAK unsigned long long __fixunsdfdi(double a) { return (unsigned long long)a; }
WEAK double __floatsidf(int a) { return a; }
WEAK double __floatunsidf(unsigned a) { return a; }
WEAK double __floatdidf(long long a) { return (double)a; }
WEAK double __floatundidf(unsigned long long a) { return (double)a; }

/* libgcc's comparison contract: the sign of the result says the order; with a
   NaN, the answer that makes the caller's test false. */
WEAK int __eqdf2(double a, double b) { return !(a == b); }
WEAK int __nedf2(double a, double b) { return !(a == b); }
WEAK int __ltdf2(double a, double b) { return a < b ? -1 : a == b ? 0 : 1; }
WEAK int __ledf2(double a, double b) { return a < b ? -1 : a == b ? 0 : 1; }
WEAK int __gtdf2(double a, double b) { return a > b ? 1 : a == b ? 0 : -1; }
WEAK int __gedf2(double a, double b) { return a > b ? 1 : a == b ? 0 : -1; }
WEAK int __unorddf2(double a, double b) { return a != a || b != b; }

/* Single precision, for cores without an FPU (Cortex-M0/M3). */
WEAK float __addsf3(float a, float b) { return a + b; }
WEAK float __subsf3(float a, float b) { return a - b; }
WEAK float __mulsf3(float a, float b) { return a * b; }
WEAK float __divsf3(float a, float b) { return a / b; }
WEAK int __fixsfsi(float a) { return (int)a; }
WEAK unsigned __fixunssfsi(float a) { return (unsigned)a; }
WEAK float __floatsisf(int a) { return (float)a; }
WEAK float __floatunsisf(unsigned a) { return (float)a; }
WEAK int __eqsf2(float a, float b) { return !(a == b); }
WEAK int __nesf2(float a, float b) { return !(a == b); }
WEAK int __ltsf2(float a, float b) { return a < b ? -1 : a == b ? 0 : 1; }
WEAK int __lesf2(float a, float b) { return a < b ? -1 : a == b ? 0 : 1; }
WEAK int __gtsf2(float a, float b) { return a > b ? 1 : a == b ? 0 : -1; }
WEAK int __gesf2(float a, float b) { return a > b ? 1 : a == b ? 0 : -1; }
WEAK int __unordsf2(float a, float b) { return a != a || b != b; }
