/* Minimal Cortex-M start-up for the conformance harness under QEMU (MPS2 boards): vector table,
 * FPU enable, .data/.bss initialisation, newlib semihosting (stdio to the host, files from the
 * host file system) and argv from the semihosting command line (QEMU
 * -semihosting-config enable=on,arg=...). main()'s return value is the QEMU exit status. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __etext, __data_start__, __data_end__, __bss_start__, __bss_end__, __stack_top;
extern int main(int argc, char **argv);
extern void initialise_monitor_handles(void);

#define SYS_GET_CMDLINE 0x15

static int semihost(int op, void *arg) {
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static char cmdline[1024];
static char *argv_buf[32];

static int get_args(void) {
    struct { char *buf; int len; } blk = {cmdline, (int)sizeof cmdline - 1};
    if (semihost(SYS_GET_CMDLINE, &blk) != 0) return 0;
    cmdline[blk.len] = 0;
    int argc = 0;
    char *p = cmdline;
    while (*p && argc < (int)(sizeof argv_buf / sizeof argv_buf[0]) - 1) {
        while (*p == ' ') *p++ = 0;
        if (!*p) break;
        argv_buf[argc++] = p;
        while (*p && *p != ' ') p++;
    }
    argv_buf[argc] = 0;
    return argc;
}

void Reset_Handler(void) {
#if defined(__ARM_FP)
    /* CPACR: full access to CP10/CP11 before any floating-point instruction */
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20);
    __asm__ volatile("dsb\n isb");
#endif
    uint32_t *s = &__etext, *d = &__data_start__;
    while (d < &__data_end__) *d++ = *s++;
    for (d = &__bss_start__; d < &__bss_end__;) *d++ = 0;
    initialise_monitor_handles();
    int argc = get_args();
    exit(main(argc, argv_buf));
}

static void fault(void) {
    /* HardFault & co.: report through semihosting and stop with a failing status */
    static const char msg[] = "FAIL cortex-m fault\n";
    semihost(0x04 /* SYS_WRITE0 */, (void *)msg);
    exit(3);
}

__attribute__((section(".vectors"), used)) void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&__stack_top, Reset_Handler, fault, fault, fault, fault, fault,
    0, 0, 0, 0, fault, fault, 0, fault, fault,
};
