/* The few C library functions generated code may call, for targets without a
   C library (bare metal, wasm). No libm: fmaf, fminf and fmaxf are written
   here, and exp / tanh / erf are generated inline by tinyc's kernels.

   LLVM calls memcpy / memset for large copies, fminf / fmaxf where the FPU has
   no min/max instruction (Armv7E-M, and wasm32, whose min/max propagate NaN),
   roundevenf / roundeven where it cannot round to integer (Armv7E-M: int8
   requantization, Round),
   and fmaf where the target has no fused multiply-add (wasm32). Compiled with -ffreestanding -fno-builtin, so these
   loops are not turned back into calls of themselves. Every function is weak:
   when the program has a C library, its definitions win, without a clash. */

#include <stddef.h>
#include <stdint.h>

#define WEAK __attribute__((weak))

WEAK void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

WEAK void *memmove(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        while (n--)
            *d++ = *s++;
    } else {
        while (n--)
            d[n] = s[n];
    }
    return dst;
}

WEAK void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

/* These three work on the bits, not with float operations: on a core whose C
   code is built for soft float (Cortex-M: the calling convention llvmlite uses),
   an integer compare is much cheaper than a call into the float emulation. */

static uint32_t bits_of(float x) {
    union {
        float f;
        uint32_t i;
    } u = {x};
    return u.i;
}

static float float_of(uint32_t i) {
    union {
        uint32_t i;
        float f;
    } u = {i};
    return u.f;
}

static int is_nan(uint32_t b) {
    return (b & 0x7fffffff) > 0x7f800000;
}

/* A signed integer with the same order as the float (negatives reflected). */
static int32_t order_key(uint32_t b) {
    return (int32_t)(b ^ ((uint32_t)((int32_t)b >> 31) & 0x7fffffff));
}

/* IEEE minNum / maxNum: a NaN operand loses to a number. */
WEAK float fminf(float a, float b) {
    uint32_t x = bits_of(a), y = bits_of(b);
    if (is_nan(x))
        return b;
    if (is_nan(y))
        return a;
    return order_key(x) < order_key(y) ? a : b;
}

WEAK float fmaxf(float a, float b) {
    uint32_t x = bits_of(a), y = bits_of(b);
    if (is_nan(x))
        return b;
    if (is_nan(y))
        return a;
    return order_key(x) > order_key(y) ? a : b;
}

/* Round half to even. */
WEAK float roundevenf(float x) {
    uint32_t u = bits_of(x), sign = u & 0x80000000;
    int exponent = (int)(u >> 23 & 0xff) - 127;
    if (exponent >= 23) /* integral already, or inf / NaN */
        return x;
    if (exponent < -1) /* |x| < 0.5 */
        return float_of(sign);
    if (exponent == -1) /* 0.5 <= |x| < 1: a tie (0.5) goes to 0 */
        return float_of((u & 0x7fffffff) == 0x3f000000 ? sign : sign | 0x3f800000);
    uint32_t fraction_bits = 0x7fffffu >> exponent, half = 1u << (22 - exponent);
    uint32_t fraction = u & fraction_bits;
    u &= ~fraction_bits;
    if (fraction > half || (fraction == half && (u & (half << 1))))
        u += half << 1; /* a carry into the exponent is still right */
    return float_of(u);
}

/* Round half to even, double precision, the same way (zig's compiler-rt has
   no roundeven; Armv7E-M cores have no double-precision FPU). */
WEAK double roundeven(double x) {
    union {
        double f;
        uint64_t i;
    } u = {x};
    uint64_t sign = u.i & 0x8000000000000000u;
    int exponent = (int)(u.i >> 52 & 0x7ff) - 1023;
    if (exponent >= 52)
        return x;
    if (exponent < -1) {
        u.i = sign;
    } else if (exponent == -1) {
        u.i = (u.i & ~sign) == 0x3fe0000000000000u ? sign : sign | 0x3ff0000000000000u;
    } else {
        uint64_t fraction_bits = 0xfffffffffffffu >> exponent, half = 1ull << (51 - exponent);
        uint64_t fraction = u.i & fraction_bits;
        u.i &= ~fraction_bits;
        if (fraction > half || (fraction == half && (u.i & (half << 1))))
            u.i += half << 1;
    }
    return u.f;
}

/* x * y + z rounded once (round to nearest even), as musl does it: the product
   of two floats is exact in double, so only the sum rounds; when that double
   lies exactly halfway between two floats, nudge it toward the true value so
   the final rounding to float goes the right way. */
WEAK float fmaf(float x, float y, float z) {
    double xy = (double)x * y;
    double sum = xy + z;
    union {
        double f;
        uint64_t i;
    } u = {sum};
    int exponent = (int)(u.i >> 52 & 0x7ff);
    int halfway = (u.i & 0x1fffffff) == 0x10000000;
    if (!halfway || exponent == 0x7ff || (sum - xy == z && sum - z == xy))
        return (float)sum;
    int negative = (int)(u.i >> 63);
    double err = negative == (z > xy) ? xy - sum + z : z - sum + xy;
    if (negative == (err < 0))
        u.i++;
    else
        u.i--;
    return (float)u.f;
}
