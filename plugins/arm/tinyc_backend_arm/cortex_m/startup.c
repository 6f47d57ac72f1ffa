/* Bare-metal Cortex-M runner: vector table, reset (data/bss init, FPU on),
   and file I/O through Arm semihosting, which qemu-system-arm serves from the
   host (-semihosting-config enable=on,target=native).

   The command line (qemu's -append) names the inputs and outputs files; the
   exit status goes back to qemu through SYS_EXIT_EXTENDED. A fault (e.g. an
   instruction this core lacks) exits with TINYC_EXIT_FAULT instead of hanging. */

#include <stdint.h>

#include "tinyc_harness.h"

/* Semihosting operations (Arm "Semihosting for AArch32 and AArch64"). */
enum { SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_WRITE0 = 0x04, SYS_WRITE = 0x05, SYS_READ = 0x06,
       SYS_GET_CMDLINE = 0x15, SYS_EXIT_EXTENDED = 0x20 };
enum { MODE_READ_BINARY = 1, MODE_WRITE_BINARY = 5 };
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

/* Symbols of the linker script. */
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_top[];

static int semihost(int op, void *args) {
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = args;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static __attribute__((noreturn)) void exit_with(int status) {
    uint32_t args[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    semihost(SYS_EXIT_EXTENDED, args);
    for (;;) {
    }
}

static size_t length(const char *s) {
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static int open_file(const char *path, int mode) {
    uint32_t args[3] = {(uint32_t)path, (uint32_t)mode, (uint32_t)length(path)};
    return semihost(SYS_OPEN, args);
}

/* SYS_READ and SYS_WRITE return the number of bytes NOT transferred. */
static int transfer(int op, const char *path, int mode, const void *buf, size_t size) {
    int fd = open_file(path, mode);
    if (fd < 0)
        return -1;
    uint32_t args[3] = {(uint32_t)fd, (uint32_t)buf, (uint32_t)size};
    int left = semihost(op, args);
    semihost(SYS_CLOSE, &fd);
    return left == 0 ? 0 : -1;
}

int tinyc_read_file(const char *path, void *buf, size_t size) {
    return transfer(SYS_READ, path, MODE_READ_BINARY, buf, size);
}

int tinyc_write_file(const char *path, const void *buf, size_t size) {
    return transfer(SYS_WRITE, path, MODE_WRITE_BINARY, buf, size);
}

/* Split the command line in place; the last two words are the file names
   (qemu may put the kernel's name first). Returns 0 when there are two. */
static int file_names(char *line, char **in_path, char **out_path) {
    char *words[8];
    int n = 0;
    for (char *p = line; *p && n < 8;) {
        while (*p == ' ')
            *p++ = 0;
        if (*p)
            words[n++] = p;
        while (*p && *p != ' ')
            p++;
    }
    if (n < 2)
        return -1;
    *in_path = words[n - 2];
    *out_path = words[n - 1];
    return 0;
}

static char cmdline[256];

/* SysTick counts processor clock ticks of the run, from the virtual clock: under
   qemu's -icount shift=0 an instruction takes 1 ns, so the count measures the
   instructions executed (tinyc_backend_arm.icount). The 24-bit counter's wraps
   are counted by its interrupt. */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
#define SYST_TOP 0xFFFFFFu
static volatile uint32_t systick_wraps;

static void systick(void) {
    systick_wraps++;
}

static void print_ticks(uint32_t wraps, uint32_t ticks) {
    char text[48] = "tinyc-systick ";
    char digits[24];
    uint64_t n = (uint64_t)wraps * (SYST_TOP + 1) + ticks;
    int k = 0, at = 14;
    do {
        digits[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    while (k)
        text[at++] = digits[--k];
    text[at++] = '\n';
    text[at] = 0;
    semihost(SYS_WRITE0, text);
}

static int run_from_command_line(void) {
    uint32_t args[2] = {(uint32_t)cmdline, sizeof cmdline - 1};
    char *in_path, *out_path;
    if (semihost(SYS_GET_CMDLINE, args) != 0 || file_names(cmdline, &in_path, &out_path) != 0)
        return TINYC_EXIT_USAGE;
    SYST_RVR = SYST_TOP;
    SYST_CVR = 0;
    SYST_CSR = 0x7; /* processor clock, interrupt, on */
    int status = tinyc_harness_run(in_path, out_path);
    uint32_t left = SYST_CVR, wraps = systick_wraps;
    SYST_CSR = 0;
    print_ticks(wraps, SYST_TOP - left);
    return status;
}

void tinyc_reset(void) {
    /* FPU and MVE on first (CPACR: CP10, CP11 full access): the compiler may use
       them for the loops below, and the model's code uses them although this file
       is built for the soft-float calling convention. On a core without an FPU
       the register ignores the write. */
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    for (uint32_t *src = __data_load, *dst = __data_start; dst < __data_end;)
        *dst++ = *src++;
    for (uint32_t *dst = __bss_start; dst < __bss_end;)
        *dst++ = 0;
    exit_with(run_from_command_line());
}

static void fault(void) {
    exit_with(TINYC_EXIT_FAULT);
}

/* Initial stack pointer, reset, then NMI, HardFault, MemManage, BusFault,
   UsageFault, (reserved x4), SVCall, DebugMonitor, (reserved), PendSV, SysTick. */
__attribute__((section(".vectors"), used)) void *const tinyc_vectors[16] = {
    __stack_top, tinyc_reset, fault, fault, fault, fault, fault, 0, 0, 0, 0,
    fault, fault, 0, fault, systick};
