/* The few C library functions generated code may call, for targets without a
   C library (bare metal, wasm). No libm: fmaf, fminf and fmaxf are written
   here, and exp / tanh / erf are generated inline by tinyc's kernels.

   LLVM calls memcpy / memset for large copies, fminf / fmaxf where the FPU has
   no min/max instruction (Armv7E-M, and wasm32, whose min/max propagate NaN),
   roundevenf where it cannot round to integer (Armv7E-M: int8 requantization),
   and fmaf where the target has no fused multiply-add (wasm32). Compiled with -ffreestanding -fno-builtin, so these
   loops are not turned back into calls of themselves. */

#include <stddef.h>
#include <stdint.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
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

void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

/* IEEE minNum / maxNum: a NaN operand loses to a number. */
float fminf(float a, float b) {
    if (a != a)
        return b;
    if (b != b)
        return a;
    return a < b ? a : b;
}

float fmaxf(float a, float b) {
    if (a != a)
        return b;
    if (b != b)
        return a;
    return a > b ? a : b;
}

/* Round half to even, in the default rounding mode: adding and subtracting 2^23
   leaves no fraction bits, so the FPU's own rounding does the work. */
float roundevenf(float x) {
    union {
        float f;
        uint32_t i;
    } u = {x};
    uint32_t magnitude = u.i & 0x7fffffff;
    if (magnitude >= 0x4b000000) /* |x| >= 2^23: integral already, or inf / NaN */
        return x;
    volatile float shifted = (u.i >> 31 ? -x : x) + 8388608.0f;
    float rounded = shifted - 8388608.0f;
    return u.i >> 31 ? -rounded : rounded;
}

/* x * y + z rounded once (round to nearest even), as musl does it: the product
   of two floats is exact in double, so only the sum rounds; when that double
   lies exactly halfway between two floats, nudge it toward the true value so
   the final rounding to float goes the right way. */
float fmaf(float x, float y, float z) {
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
