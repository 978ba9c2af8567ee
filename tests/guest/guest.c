/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A freestanding test guest for ivshmem-doorbell and ivshmem-plain.
 *
 * Booted by QEMU with -kernel (PVH, 32-bit protected mode).  It finds the
 * ivshmem device (1af4:1110) by PCI configuration mechanism #1 on bus 0 and
 * the buses behind bridges, checks the identity and BARs SeaBIOS assigned,
 * turns on PAE paging (identity map of the low 4 GiB with 2 MiB pages; a
 * BAR2 above 4 GiB is mapped through a window at virtual 1 GiB), and in
 * doorbell mode enables the local APIC and MSI-X (vector n -> IDT vector
 * 0x30 + n).  It reports on COM1 and ends QEMU through isa-debug-exit:
 * value 0x10 on success (QEMU exits 33), 0x11 on failure (QEMU exits 35).
 *
 * Parameters, from the kernel command line (-append):
 *   mode=doorbell|plain|pattern  (default doorbell)
 *   role=ping|pong               side of the exchange (default ping)
 *   count=N                      messages to exchange (default 1000)
 *   vectors=N                    vectors to use (default: MSI-X table size)
 *   peer=N                       peer ID to talk to (default: discovered)
 *   hold=N                       ping waits for host_flag >= k before
 *                                message k * N (k = 1, 2, ...)
 *   verify=1                     pattern mode: check the host's pattern
 *   bar32=1                      expect BAR2 32-bit, below 4 GiB (use64=off)
 *   timeout=S                    seconds to wait for anything (default 60)
 *   verbose=N                    print the first N messages: ping "sent <i>
 *                                on vector <v> payload <hex>" and "answer <i>
 *                                on vector <v>", pong "got <i> on vector <v>"
 *                                and "replied <i>" (<v>: where the interrupt
 *                                arrived; in plain mode the message's vector)
 *   rtt=1                        ping times each round trip with rdtsc, from
 *                                its doorbell write to the answer interrupt
 *                                (plain mode: to seeing the answer posted),
 *                                and ends with "rtt: n <count> median <ns>
 *                                p99 <ns> max <ns> ns"; the first 4096 trips
 *                                count, those printed by verbose= do not.
 *                                The TSC rate comes from CPUID 0x40000010
 *                                or 0x15 when filled in, else from 100 ms
 *                                of the local APIC timer.
 *
 * Protocol (doorbell and plain modes), on struct shm at offset 0 of BAR2:
 *   Each side writes its IVPOSITION, vector count and message count into
 *   side[0] (ping) or side[1] (pong), magic last, after its MSI-X is on.
 *   Each waits for the other's magic; the peer ID comes from there.
 *   Then for i = 0 .. count-1, strictly alternating:
 *     ping writes msg[0] = {seq i, vector i % vectors, payload}, then
 *       posted = i + 1, then rings DOORBELL (pong << 16) | (i % vectors);
 *     pong waits for an interrupt, checks it arrived exactly once and on
 *       vector i % vectors, checks msg[0], and answers the same way in
 *       msg[1] on ping's vector i % vectors; ping checks likewise.
 *   With one message in flight per direction, nothing may coalesce: any
 *   missing, duplicate or misrouted interrupt is counted as an error.  In
 *   plain mode the sides poll "posted" instead of taking interrupts.
 *   At the end each side waits 100 ms for stray interrupts.
 *
 * Pattern mode: with verify=1 check that BAR2 holds host_pattern(), then
 * fill BAR2 with guest_pattern() for the host to check (all of BAR2, or the
 * first 1 GiB - 2 MiB when BAR2 lies above 4 GiB).
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

#define COM1            0x3f8
#define DEBUG_EXIT      0xf4
#define EXIT_PASS       0x10
#define EXIT_FAIL       0x11

#define VEC_BASE        0x30            /* MSI-X vector n -> IDT 0x30 + n */
#define MAX_VEC         16
#define VEC_TIMER       0x40            /* local APIC timer, 1 ms */
#define VEC_SPURIOUS    0xff

#define REG_IVPOSITION  0x08
#define REG_DOORBELL    0x0c

#define SHM_MAGIC       0x48535649      /* "IVSH" */

struct side { u32 magic, id, vectors, count; };
struct msg { u32 seq, vector, payload, posted; };
struct shm {
    struct side side[2];                /* 0: ping, 1: pong */
    u32 host_flag;                      /* written by the host, see hold= */
    u32 pad[7];
    struct msg msg[2];                  /* 0: ping -> pong, 1: pong -> ping */
};

/* ---- I/O, serial console, exit ---------------------------------------- */

#define IO_OUT(name, type) \
    static inline void name(u16 p, type v) \
    { asm volatile(#name " %0, %1" :: "a"(v), "Nd"(p)); }
#define IO_IN(name, type) \
    static inline type name(u16 p) \
    { type v; asm volatile(#name " %1, %0" : "=a"(v) : "Nd"(p)); return v; }
IO_OUT(outb, u8)
IO_OUT(outw, u16)
IO_OUT(outl, u32)
IO_IN(inb, u8)
IO_IN(inl, u32)

void *memset(void *d, int c, unsigned n);
void *memset(void *d, int c, unsigned n)
{
    for (u8 *p = d; n--; ) {
        *p++ = c;
    }
    return d;
}

static void putch(char c)
{
    while (!(inb(COM1 + 5) & 0x20)) {
    }
    outb(COM1, c);
}

/* Decimal up to 32 bits (no libgcc for 64-bit division), hex up to 64. */
static void put_num(u64 v, unsigned base, int width, char pad)
{
    char buf[24];
    int n = 0;

    do {
        if (base == 16) {
            buf[n++] = "0123456789abcdef"[v & 15];
            v >>= 4;
        } else {
            buf[n++] = '0' + (u32)v % 10;
            v = (u32)v / 10;
        }
    } while (v);
    while (n < width) {
        buf[n++] = pad;
    }
    while (n) {
        putch(buf[--n]);
    }
}

/* printf subset: %s %c %d %u %x, width, '0' padding, ll (hex only) */
static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        char pad = ' ';
        int width = 0, ll = 0;

        if (*fmt != '%') {
            putch(*fmt);
            continue;
        }
        if (*++fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + *fmt++ - '0';
        }
        while (*fmt == 'l') {
            ll++;
            fmt++;
        }
        switch (*fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            while (*s) {
                putch(*s++);
            }
            break;
        }
        case 'c':
            putch(va_arg(ap, int));
            break;
        case 'd': {
            int v = va_arg(ap, int);
            if (v < 0) {
                putch('-');
                v = -v;
            }
            put_num((u32)v, 10, width, pad);
            break;
        }
        case 'u':
        case 'x':
            put_num(ll >= 2 ? va_arg(ap, u64) : va_arg(ap, u32),
                    *fmt == 'x' ? 16 : 10, width, pad);
            break;
        default:
            putch('%');
            putch(*fmt);
        }
    }
    va_end(ap);
}

static inline u64 rdtsc(void)
{
    u64 t;

    asm volatile("rdtsc" : "=A"(t));            /* edx:eax, 32-bit code */
    return t;
}

/* n / d, as long as the quotient fits 32 bits (else saturated): no libgcc */
static u32 div64_32(u64 n, u32 d)
{
    u32 q, r;

    if ((u32)(n >> 32) >= d) {
        return 0xffffffff;
    }
    asm("divl %4" : "=a"(q), "=d"(r) : "a"((u32)n), "d"((u32)(n >> 32)),
        "rm"(d));
    return q;
}

static void cpuid(u32 leaf, u32 r[4])
{
    asm volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                 : "a"(leaf), "c"(0));
}

static void __attribute__((noreturn)) finish(bool pass)
{
    say("RESULT: %s\n", pass ? "PASS" : "FAIL");
    outb(DEBUG_EXIT, pass ? EXIT_PASS : EXIT_FAIL);
    for (;;) {
        asm volatile("cli; hlt");
    }
}

static void __attribute__((noreturn)) die(const char *what)
{
    say("error: %s\n", what);
    finish(false);
}

/* ---- command line ----------------------------------------------------- */

static const char *cmdline = "";

/* Finds "key=" among the blank-separated words; returns the value or 0. */
static const char *param(const char *key)
{
    for (const char *p = cmdline; *p; ) {
        const char *k = key;

        while (*p == ' ') {
            p++;
        }
        while (*k && *p == *k) {
            p++;
            k++;
        }
        if (!*k && *p == '=') {
            return p + 1;
        }
        while (*p && *p != ' ') {
            p++;
        }
    }
    return 0;
}

static u32 param_num(const char *key, u32 def)
{
    const char *v = param(key);
    u32 n = 0, base = 10;

    if (!v || *v == ' ' || !*v) {
        return def;
    }
    if (v[0] == '0' && v[1] == 'x') {
        base = 16;
        v += 2;
    }
    for (; *v && *v != ' '; v++) {
        u32 d = *v >= '0' && *v <= '9' ? *v - '0' :
                *v >= 'a' && *v <= 'f' ? *v - 'a' + 10 : 99;
        if (d >= base) {
            die("bad number on the command line");
        }
        n = n * base + d;
    }
    return n;
}

/* Is the value of key equal to val?  (an absent key equals def) */
static bool param_is(const char *key, const char *val, bool def)
{
    const char *v = param(key);

    if (!v) {
        return def;
    }
    while (*val && *v == *val) {
        v++;
        val++;
    }
    return !*val && (!*v || *v == ' ');
}

/* ---- PCI configuration mechanism #1 ---------------------------------- */

static u32 cfg_rd32(u32 bdf, u32 off)
{
    outl(0xcf8, 0x80000000u | bdf << 8 | (off & 0xfc));
    return inl(0xcfc);
}

static u16 cfg_rd16(u32 bdf, u32 off)
{
    return cfg_rd32(bdf, off) >> (off & 2) * 8;
}

static u8 cfg_rd8(u32 bdf, u32 off)
{
    return cfg_rd32(bdf, off) >> (off & 3) * 8;
}

static void cfg_wr32(u32 bdf, u32 off, u32 v)
{
    outl(0xcf8, 0x80000000u | bdf << 8 | (off & 0xfc));
    outl(0xcfc, v);
}

static void cfg_wr16(u32 bdf, u32 off, u16 v)
{
    outl(0xcf8, 0x80000000u | bdf << 8 | (off & 0xfc));
    outw(0xcfc + (off & 2), v);
}

/* Returns the bus/device/function of the first 1af4:1110, or -1. */
static int pci_find(u32 bus, int depth)
{
    for (u32 dev = 0; dev < 32; dev++) {
        for (u32 fn = 0; fn < 8; fn++) {
            u32 bdf = bus << 8 | dev << 3 | fn;
            u32 id = cfg_rd32(bdf, 0);
            u8 hdr;

            if ((id & 0xffff) == 0xffff) {
                if (fn == 0) {
                    break;
                }
                continue;
            }
            if (id == 0x11101af4) {
                return bdf;
            }
            hdr = cfg_rd8(bdf, 0x0e);
            if ((hdr & 0x7f) == 1 && depth < 8) {     /* a bridge */
                u32 sec = cfg_rd8(bdf, 0x19);
                int found = sec > bus ? pci_find(sec, depth + 1) : -1;
                if (found >= 0) {
                    return found;
                }
            }
            if (fn == 0 && !(hdr & 0x80)) {
                break;
            }
        }
    }
    return -1;
}

static u32 pci_find_cap(u32 bdf, u8 id)
{
    if (!(cfg_rd16(bdf, 0x06) & 0x10)) {
        return 0;
    }
    for (u32 p = cfg_rd8(bdf, 0x34) & 0xfc, n = 0; p && n < 48; n++) {
        if (cfg_rd8(bdf, p) == id) {
            return p;
        }
        p = cfg_rd8(bdf, p + 1) & 0xfc;
    }
    return 0;
}

struct bar { u64 addr, size; u32 flags; };

/* Reads memory BAR n (both halves if 64-bit) and sizes it. */
static struct bar pci_bar(u32 bdf, u32 n)
{
    u32 off = 0x10 + 4 * n;
    u32 lo = cfg_rd32(bdf, off), hi = 0, slo, shi = 0xffffffff;
    bool is64 = (lo & 7) == 4;
    u16 cmd = cfg_rd16(bdf, 0x04);
    struct bar b;

    cfg_wr16(bdf, 0x04, cmd & ~3);          /* no decoding while sizing */
    cfg_wr32(bdf, off, 0xffffffff);
    slo = cfg_rd32(bdf, off);
    cfg_wr32(bdf, off, lo);
    if (is64) {
        hi = cfg_rd32(bdf, off + 4);
        cfg_wr32(bdf, off + 4, 0xffffffff);
        shi = cfg_rd32(bdf, off + 4);
        cfg_wr32(bdf, off + 4, hi);
    }
    cfg_wr16(bdf, 0x04, cmd);

    b.flags = lo & 0xf;
    b.addr = (u64)hi << 32 | (lo & ~0xfu);
    b.size = (slo & ~0xfu) || (is64 && shi) ?
             ~((u64)shi << 32 | (slo & ~0xfu)) + 1 : 0;
    return b;
}

/* ---- paging: PAE, 2 MiB pages ----------------------------------------- */

#define MB2 (1ull << 21)
#define WINDOW 0x40000000u          /* virtual 1..2 GiB: free with small RAM */

static u64 pdpt[4] __attribute__((aligned(32)));
static u64 pd[4][512] __attribute__((aligned(4096)));

static void paging_init(void)
{
    u32 cr;

    for (u32 i = 0; i < 4; i++) {
        for (u32 j = 0; j < 512; j++) {
            /* present, writable, 2 MiB; the top GiB (MMIO) uncached */
            pd[i][j] = (u64)(i * 512 + j) << 21 | 0x83 | (i == 3 ? 0x18 : 0);
        }
        pdpt[i] = (u32)pd[i] | 1;
    }
    asm volatile("mov %%cr4, %0; or $0x20, %0; mov %0, %%cr4" : "=r"(cr));
    asm volatile("mov %0, %%cr3" :: "r"(pdpt) : "memory");
    asm volatile("mov %%cr0, %0; or $0x80000000, %0; mov %0, %%cr0" : "=r"(cr)
                 :: "memory");
}

/*
 * Returns a pointer through which physical [phys, phys + *size) is reached.
 * Below 4 GiB that is the identity map; above, a window of 1 GiB less
 * 2 MiB at virtual 1 GiB, and *size is cut down to what fits.
 */
static volatile void *map(u64 phys, u64 *size)
{
    u64 base = phys & ~(MB2 - 1);

    if (phys + *size <= (1ull << 32)) {
        return (volatile void *)(u32)phys;      /* identity mapped */
    }
    if (*size > (1u << 30) - MB2) {
        *size = (1u << 30) - MB2;
    }
    for (u32 j = 0; base + j * MB2 < phys + *size; j++) {
        pd[1][j] = (base + j * MB2) | 0x83;
    }
    asm volatile("mov %0, %%cr3" :: "r"(pdpt) : "memory");   /* flush TLB */
    return (volatile void *)(WINDOW + (u32)(phys - base));
}

/* ---- interrupts: IDT, local APIC -------------------------------------- */

struct frame {
    u32 edi, esi, ebp, esp, ebx, edx, ecx, eax;
    u32 vector, error, eip, cs, eflags;
};

struct idt_entry {
    u16 off_lo, sel;
    u8 zero, type;
    u16 off_hi;
} __attribute__((packed));
static struct idt_entry idt[256];
extern const u32 isr_stubs[256];

static volatile u32 *apic;
static volatile u32 ticks, irq_count[MAX_VEC], irq_total, irq_stray;
static volatile u64 irq_tsc;                    /* TSC at the last doorbell */

static u32 apic_rd(u32 reg) { return apic[reg / 4]; }
static void apic_wr(u32 reg, u32 v) { apic[reg / 4] = v; }

void isr_dispatch(struct frame *f);
void isr_dispatch(struct frame *f)
{
    u32 v = f->vector;

    if (v < 32) {
        say("exception %u, error %x, at eip %x\n", v, f->error, f->eip);
        finish(false);
    }
    if (v == VEC_SPURIOUS) {
        return;                                 /* no EOI for spurious */
    }
    if (v == VEC_TIMER) {
        ticks++;
    } else if (v >= VEC_BASE && v < VEC_BASE + MAX_VEC) {
        irq_tsc = rdtsc();
        irq_count[v - VEC_BASE]++;
        irq_total++;
    } else {
        irq_stray++;
    }
    apic_wr(0xb0, 0);                           /* EOI */
}

static void interrupts_init(void)
{
    struct { u16 limit; u32 base; } __attribute__((packed)) idtr;
    u32 lo, hi;

    for (u32 v = 0; v < 256; v++) {
        idt[v] = (struct idt_entry){ isr_stubs[v] & 0xffff, 0x08, 0, 0x8e,
                                     isr_stubs[v] >> 16 };
    }
    idtr.limit = sizeof(idt) - 1;
    idtr.base = (u32)idt;
    asm volatile("lidt %0" :: "m"(idtr));

    outb(0x21, 0xff);                           /* mask both 8259s */
    outb(0xa1, 0xff);

    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(0x1b));
    apic = (volatile u32 *)(lo & 0xfffff000);
    asm volatile("wrmsr" :: "a"(lo | 0x800), "d"(hi), "c"(0x1b));
    apic_wr(0xf0, 0x100 | VEC_SPURIOUS);        /* SVR: APIC on */
    apic_wr(0x80, 0);                           /* TPR: take everything */
    /* Periodic timer: QEMU's APIC counts at 1 GHz; / 16 * 62500 = 1 ms */
    apic_wr(0x3e0, 0x3);
    apic_wr(0x320, 0x20000 | VEC_TIMER);
    apic_wr(0x380, 62500);
    asm volatile("sti");
}

static u32 timeout_ticks, spin;

/*
 * Waits until cond holds; false after timeout_ticks.  The check runs with
 * interrupts off and "sti; hlt" sleeps atomically, so no wakeup is missed.
 * With spin set, it polls a while before sleeping (plain mode: no
 * interrupts but the timer).
 */
#define WAIT(cond) ({                                                   \
    u32 t0_ = ticks, n_ = 0;                                            \
    bool ok_;                                                           \
    for (;;) {                                                          \
        asm volatile("cli" ::: "memory");                               \
        if (cond) {                                                     \
            ok_ = true;                                                 \
            break;                                                      \
        }                                                               \
        if (ticks - t0_ > timeout_ticks) {                              \
            ok_ = false;                                                \
            break;                                                      \
        }                                                               \
        if (n_++ < spin) {                                            \
            asm volatile("sti; pause" ::: "memory");                    \
        } else {                                                        \
            n_ = 0;                                                     \
            asm volatile("sti; hlt" ::: "memory");                      \
        }                                                               \
    }                                                                   \
    asm volatile("sti" ::: "memory");                                   \
    ok_;                                                                \
})

/* ---- round-trip times (rtt=1) ----------------------------------------- */

#define RTT_MAX 4096

static u32 tsc_khz;                             /* TSC ticks per ms */
static u32 rtt[RTT_MAX], rtt_n;                 /* per-trip TSC deltas */

/*
 * The TSC rate: from the hypervisor's timing leaf (0x40000010: kHz) or the
 * TSC leaf (0x15: crystal Hz * ebx / eax) when one is filled in, else
 * counted over 100 ticks (1 ms each) of the local APIC timer, from one tick
 * to another so both ends see the same interrupt latency.
 */
static void tsc_calibrate(void)
{
    const char *how = "CPUID 0x40000010";
    u32 r[4], max, t;
    u64 t0;

    cpuid(0, r);
    max = r[0];
    cpuid(1, r);
    if (r[2] & (1u << 31)) {                    /* under a hypervisor */
        cpuid(0x40000000, r);
        if (r[0] >= 0x40000010 && r[0] < 0x40000100) {
            cpuid(0x40000010, r);
            tsc_khz = r[0];
        }
    }
    if (!tsc_khz && max >= 0x15 && max < 0x100) {
        cpuid(0x15, r);
        if (r[0] && r[1] && r[2]) {
            how = "CPUID 0x15";
            tsc_khz = div64_32((u64)r[2] * r[1], r[0] * 1000);
        }
    }
    if (!tsc_khz) {
        how = "local APIC timer, 100 ms";
        t = ticks;
        WAIT(ticks != t);
        t0 = rdtsc();
        t = ticks;
        WAIT(ticks - t >= 100);
        tsc_khz = div64_32(rdtsc() - t0, 100);
    }
    say("tsc: %u kHz (%s)\n", tsc_khz, how);
    if (!tsc_khz) {
        die("no TSC rate for rtt=1");
    }
}

static void rtt_record(u64 delta)
{
    if (rtt_n < RTT_MAX) {
        rtt[rtt_n++] = delta >> 32 ? 0xffffffff : (u32)delta;
    }
}

static u32 tsc_to_ns(u32 delta)
{
    return div64_32((u64)delta * 1000000, tsc_khz);
}

/* Sorts the trips (insertion sort: 4096 at most) and prints one line. */
static void rtt_report(void)
{
    u32 n = rtt_n, p50, p99;

    for (u32 k = 1; k < n; k++) {
        u32 d = rtt[k], j = k;

        for (; j && rtt[j - 1] > d; j--) {
            rtt[j] = rtt[j - 1];
        }
        rtt[j] = d;
    }
    if (!n) {
        say("rtt: n 0 median 0 p99 0 max 0 ns\n");
        return;
    }
    p50 = (50 * (n - 1) + 50) / 100;            /* nearest rank */
    p99 = (99 * (n - 1) + 50) / 100;
    say("rtt: n %u median %u p99 %u max %u ns\n", n, tsc_to_ns(rtt[p50]),
        tsc_to_ns(rtt[p99]), tsc_to_ns(rtt[n - 1]));
}

/* ---- the exchange ----------------------------------------------------- */

static volatile struct shm *shm;
static volatile u32 *regs;
static bool doorbell;
static u32 nvec = 1, peer_id, verbose;
static bool rtt_on;
static u64 sent_tsc;                            /* TSC at the last doorbell */
static u32 sent, received, lost, dups, wrongvec, baddata, per_vec[MAX_VEC];

static u32 payload(u32 slot, u32 i)
{
    return i * 0x9e3779b1u ^ (slot ? 0xc0ffee00u : 0x00beef00u);
}

static void complain(u32 i, const char *what, u32 a, u32 b)
{
    if (lost + dups + wrongvec + baddata < 10) {
        say("message %u: %s (%u, %u)\n", i, what, a, b);
    }
}

static void send(u32 slot, u32 i, u32 v)
{
    volatile struct msg *m = &shm->msg[slot];

    m->seq = i;
    m->vector = v;
    m->payload = payload(slot, i);
    asm volatile("" ::: "memory");              /* x86 keeps store order */
    m->posted = i + 1;
    sent_tsc = rdtsc();                         /* a round trip starts */
    if (doorbell) {
        regs[REG_DOORBELL / 4] = peer_id << 16 | v;
    }
    sent++;
}

/*
 * Waits for message i, announced on vector v; *on is the vector its
 * interrupt came on (plain mode: the vector written in the message).
 */
static bool receive(u32 slot, u32 i, u32 v, u32 *on)
{
    volatile struct msg *m = &shm->msg[slot];

    if (doorbell) {
        u32 count[MAX_VEC], total;

        if (!WAIT(irq_total)) {
            complain(i, "no interrupt: lost", i, v);
            lost++;
            return false;
        }
        asm volatile("cli" ::: "memory");
        total = irq_total;
        irq_total = 0;
        for (u32 n = 0; n < nvec; n++) {
            count[n] = irq_count[n];
            irq_count[n] = 0;
        }
        asm volatile("sti" ::: "memory");
        *on = v;
        if (!count[v]) {
            for (u32 n = 0; n < nvec; n++) {
                if (count[n]) {
                    complain(i, "on the wrong vector (sent, got)", v, n);
                    *on = n;
                }
            }
            wrongvec++;
        } else if (total > 1) {
            complain(i, "duplicate interrupts (vector, count)", v, total);
            dups++;
        } else {
            per_vec[v]++;
        }
        if (m->posted != i + 1) {
            complain(i, "interrupt ahead of the data (posted)", m->posted, 0);
            baddata++;
        }
    }
    if (!WAIT(m->posted == i + 1)) {
        complain(i, "never posted: lost (posted)", m->posted, 0);
        lost++;
        return false;
    }
    if (m->seq != i || m->vector != v || m->payload != payload(slot, i)) {
        complain(i, "bad contents (seq, vector)", m->seq, m->vector);
        baddata++;
    }
    if (!doorbell) {
        *on = m->vector;
    }
    received++;
    return true;
}

static bool exchange(bool ping, u32 count)
{
    u32 me = ping ? 0 : 1, hold = param_num("hold", 0);
    volatile struct side *mine = &shm->side[me], *other = &shm->side[!me];

    mine->id = regs[REG_IVPOSITION / 4];
    mine->vectors = nvec;
    mine->count = count;
    asm volatile("" ::: "memory");
    mine->magic = SHM_MAGIC;
    say("own id %u, waiting for the %s\n", mine->id, ping ? "pong" : "ping");
    if (!WAIT(other->magic == SHM_MAGIC)) {
        die("the peer never showed up");
    }
    peer_id = param_num("peer", other->id);
    say("peer id %u, %u vectors, %u messages\n", peer_id, other->vectors,
        other->count);
    if (other->vectors != nvec || other->count != count) {
        die("the peer uses other vectors= or count=");
    }

    for (u32 i = 0; i < count; i++) {
        u32 v = i % nvec, on;
        bool show = i < verbose;

        if (ping && hold && i && i % hold == 0) {
            u32 k = i / hold;
            say("hold %u\n", k);
            if (!WAIT(shm->host_flag >= k)) {
                die("the host never released the hold");
            }
        }
        if (ping) {
            send(0, i, v);
            if (show) {
                say("sent %u on vector %u payload %x\n", i, v, payload(0, i));
            }
            if (!receive(1, i, v, &on)) {
                return false;
            }
            if (rtt_on && !show) {              /* printing costs time */
                rtt_record((doorbell ? irq_tsc : rdtsc()) - sent_tsc);
            }
            if (show) {
                say("answer %u on vector %u\n", i, on);
            }
        } else {
            if (!receive(0, i, v, &on)) {
                return false;
            }
            if (show) {
                say("got %u on vector %u\n", i, on);
            }
            send(1, i, v);
            if (show) {
                say("replied %u\n", i);
            }
        }
        if ((i + 1) % 250 == 0) {
            say("progress %u\n", i + 1);
        }
    }

    /* Stray interrupts after the last message? */
    if (doorbell) {
        u32 t0 = ticks;
        WAIT(ticks - t0 >= 100);
        if (irq_total) {
            say("%u interrupts after the last message\n", irq_total);
            dups += irq_total;
        }
        for (u32 n = 0; n < nvec; n++) {
            say("vector %u: %u messages\n", n, per_vec[n]);
        }
    }
    say("summary: sent %u received %u lost %u duplicate %u wrong-vector %u "
        "bad-data %u\n", sent, received, lost, dups, wrongvec, baddata);
    if (rtt_on) {
        rtt_report();
    }
    return received == count && !lost && !dups && !wrongvec && !baddata;
}

static u32 host_pattern(u32 k) { return k * 0x01000193u ^ 0xa5a5a5a5u; }
static u32 guest_pattern(u32 k) { return k * 0x9e3779b1u ^ 0x5a5a5a5au; }

static bool pattern(u64 size)
{
    volatile u32 *w = (volatile u32 *)shm;
    u32 words = size / 4, bad = 0;

    if (param_num("verify", 0)) {
        for (u32 k = 0; k < words; k++) {
            if (w[k] != host_pattern(k) && bad++ < 5) {
                say("word %u: %x, host wrote %x\n", k, w[k], host_pattern(k));
            }
        }
        say("pattern: checked %u host words, %u differ\n", words, bad);
    }
    for (u32 k = 0; k < words; k++) {
        w[k] = guest_pattern(k);
    }
    say("pattern: wrote %u words\n", words);
    return !bad;
}

/* ---- main ------------------------------------------------------------- */

void guest_main(u32 *start_info);
void guest_main(u32 *start_info)
{
    bool plain_mode, ok = true;
    u32 bdf, cap, count, abi = 0, id, sub;
    int found;
    struct bar bar0, bar1, bar2;
    u64 shm_size;

    outb(COM1 + 1, 0);                              /* no UART interrupts */
    if (start_info[0] == 0x336ec578 && start_info[6]) {   /* PVH cmdline */
        cmdline = (const char *)start_info[6];
    }
    plain_mode = param_is("mode", "plain", false);
    doorbell = param_is("mode", "doorbell", true);
    count = param_num("count", 1000);
    timeout_ticks = param_num("timeout", 60) * 1000;
    verbose = param_num("verbose", 0);
    rtt_on = param_num("rtt", 0) && param_is("role", "ping", true);
    say("ivshmem-guest: %s\n", cmdline);
    if (!doorbell && !plain_mode && !param_is("mode", "pattern", false)) {
        die("mode= must be doorbell, plain or pattern");
    }

    paging_init();
    interrupts_init();
    if (rtt_on) {
        tsc_calibrate();
    }

    found = pci_find(0, 0);
    if (found < 0) {
        die("no ivshmem device (1af4:1110)");
    }
    bdf = found;
    id = cfg_rd32(bdf, 0x08);
    sub = cfg_rd32(bdf, 0x2c);
    say("pci %02x:%02x.%u: rev %u class %04x subsystem %04x:%04x pin %u\n",
        bdf >> 8, bdf >> 3 & 31, bdf & 7, id & 0xff, id >> 16,
        sub & 0xffff, sub >> 16, cfg_rd8(bdf, 0x3d));
    abi += (id & 0xff) != 1 || id >> 16 != 0x0500 || sub != 0x11001af4 ||
           cfg_rd8(bdf, 0x3d) != 0;

    bar0 = pci_bar(bdf, 0);
    bar1 = pci_bar(bdf, 1);
    bar2 = pci_bar(bdf, 2);
    say("bar0 %llx size %llx, bar1 %llx size %llx, bar2 %llx size %llx "
        "flags %x\n", bar0.addr, bar0.size, bar1.addr, bar1.size,
        bar2.addr, bar2.size, bar2.flags);
    abi += bar0.size != 256 || (bar0.flags & 7) != 0;
    /* bar32=1: the device has use64=off, so BAR2 is 32-bit, below 4 GiB. */
    if (param_num("bar32", 0)) {
        abi += bar2.flags != 0x8 || bar2.addr >= (1ull << 32);
    } else {
        abi += bar2.flags != 0xc;
    }
    abi += !bar2.size || (bar2.size & (bar2.size - 1));
    if (!bar0.addr || !bar2.addr || bar0.addr >= (1ull << 32)) {
        die("BARs not assigned");
    }
    cfg_wr16(bdf, 0x04, cfg_rd16(bdf, 0x04) | 0x6);     /* memory, master */

    regs = (volatile u32 *)(u32)bar0.addr;
    shm_size = bar2.size;
    shm = map(bar2.addr, &shm_size);
    say("bar2: %x bytes mapped at %x%s\n", (u32)shm_size, (u32)shm,
        bar2.addr >> 32 ? " (above 4 GiB, through the window)" : "");

    cap = pci_find_cap(bdf, 0x11);
    if (!doorbell) {
        abi += !!cap || bar1.size || regs[REG_IVPOSITION / 4] != 0;
    } else {
        u16 ctrl = cfg_rd16(bdf, cap + 2);
        u32 tsize = (ctrl & 0x7ff) + 1, tbl = cap ? cfg_rd32(bdf, cap + 4) : 0;
        struct bar tb = pci_bar(bdf, tbl & 7);
        volatile u32 *t;
        u32 apic_id = apic_rd(0x20) >> 24;

        if (!cap || tb.addr + (tbl & ~7u) >= (1ull << 32)) {
            die("no MSI-X, or its table above 4 GiB");
        }
        nvec = param_num("vectors", tsize);
        if (!nvec || nvec > tsize || nvec > MAX_VEC) {
            die("vectors= must be 1 .. MSI-X table size (at most 16)");
        }
        t = (volatile u32 *)(u32)(tb.addr + (tbl & ~7u));
        cfg_wr16(bdf, cap + 2, ctrl | 0xc000);          /* enable, masked */
        for (u32 n = 0; n < tsize; n++) {
            t[n * 4 + 0] = 0xfee00000 | apic_id << 12;
            t[n * 4 + 1] = 0;
            t[n * 4 + 2] = VEC_BASE + (n < MAX_VEC ? n : 0);
            t[n * 4 + 3] = n < nvec ? 0 : 1;            /* unmask ours */
        }
        cfg_wr16(bdf, cap + 2, (ctrl | 0x8000) & ~0x4000);
        say("msi-x: %u entries in bar %u, using %u, apic id %u\n",
            tsize, tbl & 7, nvec, apic_id);
    }
    if (abi) {
        say("error: the device does not show the ivshmem ABI\n");
        ok = false;
    }

    if (param_is("mode", "pattern", false)) {
        ok &= pattern(shm_size);
    } else {
        spin = doorbell ? 0 : 2000;
        ok &= exchange(param_is("role", "ping", true), count);
    }
    if (irq_stray) {
        say("error: %u interrupts on unexpected vectors\n", irq_stray);
        ok = false;
    }
    finish(ok);
}
