/*
 * vgr_main.c — vgrecord, a Valgrind tool that records what vmsim needs to replay a real
 * program: every instruction fetch, load, store and read-modify-write, the client's
 * segment map when it starts, its memory-management system calls with their results,
 * fork/clone/exit/exec, and every range of user memory the kernel writes (read(2),
 * fstat(2), getdents64(2), signal frames, …: whatever Valgrind's syscall wrappers report
 * through the post_mem_write event).
 *
 * Copyright (C) 2025 the vmsim authors.
 *
 * This program is free software; you can redistribute it and/or modify it under the
 * terms of the GNU General Public License as published by the Free Software Foundation;
 * either version 2 of the License, or (at your option) any later version. It links
 * Valgrind's core (GPL-2.0-or-later); see COPYING in this directory. vmsim itself (MIT)
 * only reads the stream this tool writes and never links it.
 *
 * Output: the raw stream of docs/RECORD.md, written to the FIFO or file named by
 * --vgr-out=PATH (opened again after each exec). It is a sequence of chunks, each a
 * two-word header (magic, pid | nwords << 32) and nwords 64-bit little-endian words:
 *
 *   access   63..62 kind (0 read, 1 write, 2 exec, 3 modify) | 61..48 size (>= 1)
 *            | 47..0 address (bits 63..48 of the address dropped: user space is 47 bits)
 *   control  61..48 zero | 47..8 nargs | 7..0 type; then nargs argument words
 *
 * Speed: references are not passed to a helper. The instrumentation stores each record
 * straight into a 1 MiB buffer with inline IR (two or three host instructions a
 * reference); each superblock first checks that the buffer has room for all the records
 * it can make and calls the flush helper if not. Control records are appended by C code.
 *
 * Processes: the buffer is flushed before fork/clone/exec/exit, so a parent's records
 * before a fork precede everything its child writes; the child itself writes the CLONE
 * record. While more than one process may write the stream (after the first fork), each
 * chunk is at most PIPE_BUF (4096) bytes, which a pipe writes atomically, so chunks of
 * different processes never interleave. Threads: Valgrind runs one thread at a time;
 * a TID record precedes the records of each thread that starts running.
 */
#include "pub_tool_basics.h"
#include "pub_tool_aspacemgr.h"
#include "pub_tool_libcassert.h"
#include "pub_tool_libcbase.h"
#include "pub_tool_libcfile.h"
#include "pub_tool_libcprint.h"
#include "pub_tool_libcproc.h"
#include "pub_tool_machine.h"
#include "pub_tool_options.h"
#include "pub_tool_threadstate.h"
#include "pub_tool_tooliface.h"
#include "pub_tool_vki.h"
#include "pub_tool_vkiscnums.h"

/* Core functions without a pub_tool_ declaration (coregrind/pub_core_libcfile.h). */
extern Int VG_(safe_fd)(Int oldfd);
extern Int VG_(fcntl)(Int fd, Int cmd, Addr arg);
/* The client's initial break (coregrind/pub_core_clientstate.h). */
extern Addr VG_(brk_base);

/* ---- the raw stream (docs/RECORD.md) ----------------------------------------------- */

#define VGR_MAGIC     0x314B4E4843524756ULL /* "VGRCHNK1" */
#define VGR_VA_MASK   0x0000FFFFFFFFFFFFULL
#define VGR_SIZE_MAX  16383u                /* 14-bit size field */
#define VGR_ACC(k, s) (((ULong)(k) << 62) | ((ULong)(s) << 48))
#define VGR_CTL(t, n) ((ULong)(t) | ((ULong)(n) << 8))

enum { VGR_READ = 0, VGR_WRITE = 1, VGR_EXEC = 2, VGR_MODIFY = 3 };

/* Control record types; the arguments are listed in docs/RECORD.md. */
enum {
    VGR_C_PAD = 0,      /* no arguments: skipped (a guarded access that did not happen) */
    VGR_C_TID = 1,      /* tid */
    VGR_C_START = 2,    /* pid, ppid: a tool instance starts (process start, or after exec) */
    VGR_C_MAP = 3,      /* start, end, off, prot, flags, pathlen, path words */
    VGR_C_MMAP = 4,     /* addr, len, prot, flags, fd, off, ret, pathlen, path words */
    VGR_C_MUNMAP = 5,   /* addr, len, ret */
    VGR_C_MPROTECT = 6, /* addr, len, prot, ret */
    VGR_C_BRK = 7,      /* addr, ret */
    VGR_C_MADVISE = 8,  /* addr, len, advice, ret */
    VGR_C_CLONE = 9,    /* parent tid, child, clone flags */
    VGR_C_EXIT = 10,    /* status, group */
    VGR_C_KWRITE = 11,  /* va, len */
    VGR_C_EXEC = 12,  /* pathlen, path words: about to exec */
    VGR_C_MREMAP = 13,  /* old, oldlen, newlen, flags, ret, prot, mapflags, off, pathlen, path */
    VGR_C_END = 14,     /* no arguments: the tool instance finished cleanly */
    VGR_C_EXECFAIL = 15, /* no arguments: the exec announced last failed */
};

/* MAP flags (the segment's kind as Valgrind's address-space manager knows it). */
#define VGR_MF_ANON   0x1u
#define VGR_MF_SHARED 0x2u
#define VGR_MF_STACK  0x4u /* holds the initial stack pointer: grows down */
#define VGR_MF_HEAP   0x8u /* Valgrind's client brk heap */
#define VGR_MF_KPOP   0x10u /* pages the kernel wrote before the program ran (stack top) */

/* ---- options ----------------------------------------------------------------------- */

static const HChar *clo_out = NULL; /* --vgr-out=PATH */
static Int clo_root = 0;            /* --vgr-root=PID: the process vmsim record started */
static Bool clo_fetch = True;       /* --vgr-fetch=no drops instruction fetches */

static Bool vgr_process_cmd_line_option(const HChar *arg)
{
    Long root = 0;
    if VG_STR_CLO (arg, "--vgr-out", clo_out) {
    } else if VG_INT_CLO (arg, "--vgr-root", root) {
        clo_root = (Int)root;
    } else if VG_BOOL_CLO (arg, "--vgr-fetch", clo_fetch) {
    } else
        return False;
    return True;
}

static void vgr_print_usage(void)
{
    VG_(printf)("    --vgr-out=PATH      write the raw stream to PATH (a FIFO or file)\n"
                "    --vgr-root=PID      the first traced process (others write 4 KiB chunks)\n"
                "    --vgr-fetch=no|yes  record instruction fetches [yes]\n");
}

static void vgr_print_debug_usage(void)
{
    VG_(printf)("    (none)\n");
}

/* ---- the buffer -------------------------------------------------------------------- */

#define VGR_BUF_WORDS   (1u << 17) /* records per chunk in single-process mode (1 MiB) */
#define VGR_SMALL_WORDS 510u       /* records per chunk when shared: 4096 bytes in all */

/* vgr_buf[0..1] is the chunk header; records go to vgr_buf[2 ..]. vgr_pos is the next
 * free word; generated code loads and stores it, so it is a plain global. */
static ULong vgr_buf[2 + VGR_BUF_WORDS];
static ULong *vgr_pos = vgr_buf + 2;
static ULong *const vgr_end = vgr_buf + 2 + VGR_BUF_WORDS;
static ULong vgr_small[2 + VGR_SMALL_WORDS];

static Int vgr_fd = -1;        /* -1: recording off (no --vgr-out or a write failed) */
static Bool vgr_shared = False; /* other processes may write the stream: small chunks */
static Int vgr_pid;
static ULong vgr_nrefs;

/* Write len bytes at p to the stream; on a failure stop recording (say so once). */
static void out_write(const void *p, SizeT len)
{
    const UChar *b = p;
    while (len > 0 && vgr_fd >= 0) {
        Int n = VG_(write)(vgr_fd, b, len > (1u << 30) ? (Int)(1u << 30) : (Int)len);
        if (n == -VKI_EINTR)
            continue;
        if (n <= 0) {
            VG_(message)(Vg_UserMsg, "vgrecord: write to %s failed (%d): recording stops\n",
                         clo_out, n);
            VG_(close)(vgr_fd);
            vgr_fd = -1;
            return;
        }
        b += n;
        len -= (SizeT)n;
    }
}

/* Words in the record starting at w (an access: 1; a control record: 1 + nargs). */
static SizeT rec_words(ULong w)
{
    return ((w >> 48) & 0x3FFF) ? 1 : 1 + ((w >> 8) & 0xFFFFFFFFFFULL);
}

/* Write the buffered records as chunks and empty the buffer. In shared mode the
 * records are cut at record boundaries into chunks of at most 4096 bytes. */
static void flush(void)
{
    SizeT n = (SizeT)(vgr_pos - (vgr_buf + 2));
    vgr_pos = vgr_buf + 2;
    if (n == 0 || vgr_fd < 0)
        return;
    if (!vgr_shared) {
        vgr_buf[0] = VGR_MAGIC;
        vgr_buf[1] = (ULong)(UInt)vgr_pid | ((ULong)n << 32);
        out_write(vgr_buf, (n + 2) * 8);
        return;
    }
    const ULong *w = vgr_buf + 2, *end = w + n;
    while (w < end) {
        const ULong *cut = w;
        while (cut < end && (SizeT)(cut - w) + rec_words(*cut) <= VGR_SMALL_WORDS)
            cut += rec_words(*cut);
        tl_assert(cut > w); /* control records are far shorter than a chunk */
        SizeT m = (SizeT)(cut - w);
        vgr_small[0] = VGR_MAGIC;
        vgr_small[1] = (ULong)(UInt)vgr_pid | ((ULong)m << 32);
        VG_(memcpy)(vgr_small + 2, w, m * 8);
        out_write(vgr_small, (m + 2) * 8);
        w = cut;
    }
}

/* Called by generated code when a superblock might not fit. */
static VG_REGPARM(0) void flush_full(void)
{
    vgr_nrefs += (ULong)(vgr_pos - (vgr_buf + 2));
    flush();
}

/* Make room for n words; returns where they go (the caller advances vgr_pos). */
static ULong *room(SizeT n)
{
    tl_assert(n < VGR_SMALL_WORDS);
    if (vgr_pos + n > vgr_end)
        flush_full();
    return vgr_pos;
}

/* ---- control records --------------------------------------------------------------- */

static void put_ctl(UInt type, const ULong *args, SizeT nargs)
{
    ULong *p = room(1 + nargs);
    p[0] = VGR_CTL(type, nargs);
    for (SizeT i = 0; i < nargs; i++)
        p[1 + i] = args[i];
    vgr_pos = p + 1 + nargs;
}

/* A control record whose last argument is a string: nargs fixed words, then the
 * length, then the bytes padded to whole words (at most 2048 bytes; longer is cut). */
static void put_ctl_str(UInt type, const ULong *args, SizeT nargs, const HChar *s)
{
    SizeT len = s ? VG_(strlen)(s) : 0;
    if (len > 2048)
        len = 2048;
    SizeT sw = (len + 7) / 8, total = nargs + 1 + sw;
    ULong *p = room(1 + total);
    p[0] = VGR_CTL(type, total);
    for (SizeT i = 0; i < nargs; i++)
        p[1 + i] = args[i];
    p[1 + nargs] = len;
    p[1 + nargs + sw] = 0; /* zero the padding of the last word */
    if (len)
        VG_(memcpy)(p + 2 + nargs, s, len);
    vgr_pos = p + 1 + total;
}

/* ---- threads ----------------------------------------------------------------------- */

#define VGR_MAX_TIDS 4096
static Int vgr_lwp[VGR_MAX_TIDS]; /* Valgrind ThreadId -> Linux tid (0: not known yet) */
static Int vgr_cur_lwp;           /* tid of the last TID record (0: none yet) */
static Bool vgr_started;

static void start_process(ThreadId tid);

/* The Linux tid of Valgrind thread tid (which must be the running thread when unknown). */
static Int lwp_of(ThreadId tid)
{
    if (tid < VGR_MAX_TIDS) {
        if (vgr_lwp[tid] == 0)
            vgr_lwp[tid] = VG_(gettid)();
        return vgr_lwp[tid];
    }
    return VG_(gettid)();
}

/* Make sure the stream has started and the records that follow belong to tid. */
static void set_thread(ThreadId tid)
{
    if (!vgr_started)
        start_process(tid);
    Int lwp = lwp_of(tid);
    if (lwp != vgr_cur_lwp) {
        ULong a = (ULong)lwp;
        put_ctl(VGR_C_TID, &a, 1);
        vgr_cur_lwp = lwp;
    }
}

static void vgr_start_client_code(ThreadId tid, ULong blocks)
{
    (void)blocks;
    set_thread(tid);
}

static void vgr_thread_exit(ThreadId tid)
{
    if (tid < VGR_MAX_TIDS)
        vgr_lwp[tid] = 0; /* the ThreadId may be reused for another Linux thread */
}

/* ---- the segment map --------------------------------------------------------------- */

static ULong seg_prot(const NSegment *s)
{
    return (s->hasR ? VKI_PROT_READ : 0) | (s->hasW ? VKI_PROT_WRITE : 0) |
           (s->hasX ? VKI_PROT_EXEC : 0);
}

static ULong seg_flags(const NSegment *s)
{
    ULong f = 0;
    if (s->kind != SkFileC)
        f |= VGR_MF_ANON;
    if (s->kind == SkShmC)
        f |= VGR_MF_SHARED;
    if (s->isCH || (s->kind == SkAnonC && s->start == VG_(brk_base)))
        f |= VGR_MF_HEAP;
    return f;
}

/* One MAP record for [start, end) of segment s. */
static void put_map(const NSegment *s, Addr start, Addr end, ULong extra)
{
    ULong a[5] = {start, end, s->kind == SkFileC ? (ULong)s->offset + (start - s->start) : 0,
                  seg_prot(s), seg_flags(s) | extra};
    put_ctl_str(VGR_C_MAP, a, 5, s->kind == SkFileC ? VG_(am_get_filename)(s) : NULL);
}

/* Whether s is a piece of this tool's own image (its signal-return trampoline page is
 * marked as the client's). */
static Bool is_own(const NSegment *s)
{
    const HChar *name = s->kind == SkFileC ? VG_(am_get_filename)(s) : NULL;
    SizeT n = name ? VG_(strlen)(name) : 0;
    return n >= 20 && VG_(strcmp)(name + n - 20, "vgrecord-amd64-linux") == 0;
}

/* Emit START and the client's segments (file, anonymous and shared; not Valgrind's own
 * or its reservations). The segment holding the stack pointer is the stack; its part
 * from the stack pointer's page up was written by the "kernel" (Valgrind's loader) when
 * the process started, which the KPOP flag says. */
static void start_process(ThreadId tid)
{
    vgr_started = True;
    vgr_pid = VG_(getpid)();
    ULong a[2] = {(ULong)vgr_pid, (ULong)VG_(getppid)()};
    put_ctl(VGR_C_START, a, 2);
    Addr sp = VG_(get_SP)(tid);
    Addr starts[512];
    Int n = VG_(am_get_segment_starts)(SkFileC | SkAnonC | SkShmC, starts, 512);
    if (n < 0)
        n = 0; /* more than 512 segments at start: not a real program's start */
    for (Int i = 0; i < n; i++) {
        const NSegment *s = VG_(am_find_nsegment)(starts[i]);
        if (!s || is_own(s))
            continue;
        Addr end = s->end + 1;
        if (sp >= s->start && sp < end) {
            Addr spage = sp & ~(Addr)(VKI_PAGE_SIZE - 1);
            if (spage > s->start)
                put_map(s, s->start, spage, VGR_MF_STACK);
            put_map(s, spage, end, VGR_MF_STACK | VGR_MF_KPOP);
        } else {
            put_map(s, s->start, end, 0);
        }
    }
}

/* ---- system calls ------------------------------------------------------------------ */

static Int vgr_fork_parent; /* tid that called fork/clone (read by the child) */

/* Copy the NUL-terminated client string at a into buf if it is readable. */
static const HChar *client_str(Addr a, HChar *buf, SizeT len)
{
    SizeT i = 0;
    for (; i + 1 < len; i++) {
        if (((a + i) & (VKI_PAGE_SIZE - 1)) == 0 || i == 0)
            if (!VG_(am_is_valid_for_client)(a + i, 1, VKI_PROT_READ))
                break;
        buf[i] = ((const HChar *)a)[i];
        if (!buf[i])
            return buf;
    }
    buf[i] = 0;
    return buf;
}

/* Whether the call makes a new process under Valgrind: fork, vfork, and clone without
 * CLONE_VM — or with CLONE_VM|CLONE_VFORK (posix_spawn's vfork), which Valgrind runs as
 * a fork (syswrap-amd64-linux.c). The decoder writes vforks as CLONE VM|VFORK. */
static Bool is_fork(UInt sysno, const UWord *args)
{
    if (sysno == __NR_fork || sysno == __NR_vfork)
        return True;
    return sysno == __NR_clone && (!(args[0] & VKI_CLONE_VM) || (args[0] & VKI_CLONE_VFORK));
}

static void vgr_pre_syscall(ThreadId tid, UInt sysno, UWord *args, UInt nargs)
{
    (void)nargs;
    if (vgr_fd < 0)
        return;
    set_thread(tid);
    if (sysno == __NR_clone || sysno == __NR_fork || sysno == __NR_vfork) {
        vgr_fork_parent = lwp_of(tid);
        if (is_fork(sysno, args)) {
            vgr_shared = True; /* from now on two processes write */
            flush();
        }
    } else if (sysno == __NR_exit || sysno == __NR_exit_group) {
        ULong a[2] = {(ULong)(Long)(Int)args[0], sysno == __NR_exit_group};
        put_ctl(VGR_C_EXIT, a, 2);
        flush();
    } else if (sysno == __NR_execve) {
        HChar path[1024];
        put_ctl_str(VGR_C_EXEC, NULL, 0, client_str(args[0], path, sizeof path));
        flush();
    }
}

/* After mmap/mremap: the segment now at va (path, offset) describes what was mapped. */
static const NSegment *seg_at(Addr va)
{
    const NSegment *s = VG_(am_find_nsegment)(va);
    return s && (s->kind & (SkFileC | SkAnonC | SkShmC)) ? s : NULL;
}

static void post_mm(UInt sysno, const UWord *a, SysRes res)
{
    ULong r = sr_isError(res) ? (ULong)-1 : (ULong)sr_Res(res);
    const NSegment *s;
    if (sysno == __NR_mmap) {
        s = r != (ULong)-1 ? seg_at(r) : NULL;
        ULong w[7] = {a[0], a[1], a[2], a[3], (ULong)(Long)(Int)a[4], a[5], r};
        put_ctl_str(VGR_C_MMAP, w, 7, s && s->kind == SkFileC ? VG_(am_get_filename)(s) : NULL);
    } else if (sysno == __NR_munmap) {
        ULong w[3] = {a[0], a[1], r};
        put_ctl(VGR_C_MUNMAP, w, 3);
    } else if (sysno == __NR_mprotect) {
        ULong w[4] = {a[0], a[1], a[2], r};
        put_ctl(VGR_C_MPROTECT, w, 4);
    } else if (sysno == __NR_brk) {
        ULong w[2] = {a[0], r};
        put_ctl(VGR_C_BRK, w, 2);
    } else if (sysno == __NR_madvise) {
        ULong w[4] = {a[0], a[1], a[2], r};
        put_ctl(VGR_C_MADVISE, w, 4);
    } else if (sysno == __NR_mremap) {
        s = r != (ULong)-1 ? seg_at(r) : NULL;
        ULong w[8] = {a[0], a[1], a[2], a[3], r, s ? seg_prot(s) : 0, s ? seg_flags(s) : 0,
                      s && s->kind == SkFileC ? (ULong)s->offset + (r - s->start) : 0};
        put_ctl_str(VGR_C_MREMAP, w, 8, s && s->kind == SkFileC ? VG_(am_get_filename)(s) : NULL);
    }
}

static void vgr_post_syscall(ThreadId tid, UInt sysno, UWord *args, UInt nargs, SysRes res)
{
    (void)nargs;
    if (vgr_fd < 0)
        return;
    if ((sysno == __NR_clone || sysno == __NR_fork || sysno == __NR_vfork) &&
        !sr_isError(res)) {
        ULong flags = sysno == __NR_clone ? args[0] : sysno == __NR_vfork ? VKI_CLONE_VFORK : 0;
        if (sr_Res(res) == 0 && is_fork(sysno, args)) {
            /* The child: forget the parent's threads and buffer, then say where we
             * came from. Its first records follow all of its parent's earlier ones. */
            for (Int i = 0; i < VGR_MAX_TIDS; i++)
                vgr_lwp[i] = 0;
            vgr_pos = vgr_buf + 2;
            vgr_pid = VG_(getpid)();
            vgr_cur_lwp = 0;
            ULong a[3] = {(ULong)vgr_fork_parent, (ULong)vgr_pid, flags};
            put_ctl(VGR_C_CLONE, a, 3);
            set_thread(tid);
            return;
        }
        if (sr_Res(res) != 0 && !is_fork(sysno, args)) { /* a thread: the parent says so */
            set_thread(tid);
            ULong a[3] = {(ULong)lwp_of(tid), (ULong)sr_Res(res), flags};
            put_ctl(VGR_C_CLONE, a, 3);
        }
        return;
    }
    set_thread(tid);
    if (sysno == __NR_execve) { /* only reached when it failed */
        put_ctl(VGR_C_EXECFAIL, NULL, 0);
        return;
    }
    post_mm(sysno, args, res);
}

/* The kernel (or Valgrind standing in for it) wrote client memory: a system call's
 * output, or a signal frame. */
static void vgr_post_mem_write(CorePart part, ThreadId tid, Addr a, SizeT len)
{
    if (vgr_fd < 0 || len == 0 || (part != Vg_CoreSysCall && part != Vg_CoreSignal))
        return;
    set_thread(tid);
    ULong w[2] = {a, len};
    put_ctl(VGR_C_KWRITE, w, 2);
}

/* ---- instrumentation --------------------------------------------------------------- */

/* A pending reference of the current guest instruction (as in lackey, a load followed
 * by a store of the same size to the same address becomes one modify). */
typedef struct {
    UInt kind, size;
    IRExpr *addr;  /* NULL: an instruction fetch at `iaddr` */
    IRExpr *guard; /* NULL: unconditional */
    Addr iaddr;
} Pending;

#define MAX_PENDING 16

typedef struct {
    IRSB *sb;
    IRTemp base; /* vgr_pos at the superblock's start (after the room check) */
    UInt k;      /* records written so far in this superblock */
    UInt k_saved; /* records already published to vgr_pos */
    Pending ev[MAX_PENDING];
    UInt nev;
} Ctx;

static IRTemp assign(Ctx *c, IRType ty, IRExpr *e)
{
    IRTemp t = newIRTemp(c->sb->tyenv, ty);
    addStmtToIRSB(c->sb, IRStmt_WrTmp(t, e));
    return t;
}

/* Store the pending records at base + 8k, base + 8(k+1), … */
static void emit_pending(Ctx *c)
{
    for (UInt i = 0; i < c->nev; i++) {
        Pending *p = &c->ev[i];
        IRExpr *val;
        if (!p->addr) {
            val = IRExpr_Const(IRConst_U64(VGR_ACC(VGR_EXEC, p->size) | (p->iaddr & VGR_VA_MASK)));
        } else {
            IRTemp m = assign(c, Ity_I64,
                              IRExpr_Binop(Iop_And64, p->addr, IRExpr_Const(IRConst_U64(VGR_VA_MASK))));
            IRTemp v = assign(c, Ity_I64,
                              IRExpr_Binop(Iop_Or64, IRExpr_RdTmp(m),
                                           IRExpr_Const(IRConst_U64(VGR_ACC(p->kind, p->size)))));
            if (p->guard)
                v = assign(c, Ity_I64,
                           IRExpr_ITE(p->guard, IRExpr_RdTmp(v), IRExpr_Const(IRConst_U64(0))));
            val = IRExpr_RdTmp(v);
        }
        IRExpr *at = IRExpr_RdTmp(c->base);
        if (c->k)
            at = IRExpr_RdTmp(assign(c, Ity_I64,
                                     IRExpr_Binop(Iop_Add64, at,
                                                  IRExpr_Const(IRConst_U64(8ULL * c->k)))));
        addStmtToIRSB(c->sb, IRStmt_Store(Iend_LE, at, val));
        c->k++;
    }
    c->nev = 0;
}

/* Publish the records written so far: vgr_pos = base + 8k. */
static void publish(Ctx *c)
{
    emit_pending(c);
    if (c->k == c->k_saved)
        return;
    IRTemp t = assign(c, Ity_I64, IRExpr_Binop(Iop_Add64, IRExpr_RdTmp(c->base),
                                               IRExpr_Const(IRConst_U64(8ULL * c->k))));
    addStmtToIRSB(c->sb, IRStmt_Store(Iend_LE, mkIRExpr_HWord((HWord)&vgr_pos), IRExpr_RdTmp(t)));
    c->k_saved = c->k;
}

static void add_ref(Ctx *c, UInt kind, IRExpr *addr, UInt size, IRExpr *guard)
{
    if (size > VGR_SIZE_MAX)
        size = VGR_SIZE_MAX;
    if (size == 0)
        return;
    if (kind == VGR_WRITE && !guard && c->nev > 0) {
        Pending *last = &c->ev[c->nev - 1];
        if (last->kind == VGR_READ && last->addr && !last->guard && last->size == size &&
            eqIRAtom(last->addr, addr)) {
            last->kind = VGR_MODIFY;
            return;
        }
    }
    if (c->nev == MAX_PENDING)
        emit_pending(c);
    c->ev[c->nev++] = (Pending){kind, size, addr, guard, 0};
}

/* An upper bound of the records superblock sb can write. */
static UInt max_records(const IRSB *sb)
{
    UInt n = 0;
    for (Int i = 0; i < sb->stmts_used; i++) {
        const IRStmt *st = sb->stmts[i];
        switch (st->tag) {
        case Ist_IMark:
        case Ist_Store:
        case Ist_StoreG:
        case Ist_LoadG:
        case Ist_LLSC:
            n++;
            break;
        case Ist_WrTmp:
            n += st->Ist.WrTmp.data->tag == Iex_Load;
            break;
        case Ist_Dirty:
        case Ist_CAS:
            n += 2;
            break;
        default:
            break;
        }
    }
    return n;
}

/* At the superblock's start: if vgr_pos + 8n > vgr_end call flush_full; base = vgr_pos. */
static void room_check(Ctx *c, UInt n)
{
    IRExpr *posaddr = mkIRExpr_HWord((HWord)&vgr_pos);
    IRTemp p0 = assign(c, Ity_I64, IRExpr_Load(Iend_LE, Ity_I64, posaddr));
    IRTemp full = assign(c, Ity_I1,
                         IRExpr_Binop(Iop_CmpLT64U,
                                      IRExpr_Const(IRConst_U64((ULong)(HWord)vgr_end - 8ULL * n)),
                                      IRExpr_RdTmp(p0)));
    IRDirty *di = unsafeIRDirty_0_N(0, "flush_full", VG_(fnptr_to_fnentry)(&flush_full),
                                    mkIRExprVec_0());
    di->guard = IRExpr_RdTmp(full);
    addStmtToIRSB(c->sb, IRStmt_Dirty(di));
    c->base = assign(c, Ity_I64, IRExpr_Load(Iend_LE, Ity_I64, posaddr));
}

static IRSB *vgr_instrument(VgCallbackClosure *closure, IRSB *in, const VexGuestLayout *layout,
                            const VexGuestExtents *vge, const VexArchInfo *archinfo,
                            IRType gWordTy, IRType hWordTy)
{
    (void)closure, (void)layout, (void)vge, (void)archinfo;
    if (gWordTy != Ity_I64 || hWordTy != Ity_I64)
        VG_(tool_panic)("vgrecord: 64-bit guests only");
    if (vgr_fd < 0)
        return in;
    Ctx c = {.sb = deepCopyIRSBExceptStmts(in)};
    UInt n = max_records(in);
    tl_assert(n < VGR_BUF_WORDS / 2);
    Int i = 0;
    for (; i < in->stmts_used && in->stmts[i]->tag != Ist_IMark; i++)
        addStmtToIRSB(c.sb, in->stmts[i]);
    room_check(&c, n);
    for (; i < in->stmts_used; i++) {
        IRStmt *st = in->stmts[i];
        if (!st || st->tag == Ist_NoOp)
            continue;
        switch (st->tag) {
        case Ist_IMark:
            emit_pending(&c);
            if (clo_fetch)
                c.ev[c.nev++] = (Pending){VGR_EXEC, st->Ist.IMark.len, NULL, NULL,
                                          st->Ist.IMark.addr};
            break;
        case Ist_WrTmp:
            if (st->Ist.WrTmp.data->tag == Iex_Load)
                add_ref(&c, VGR_READ, st->Ist.WrTmp.data->Iex.Load.addr,
                        sizeofIRType(st->Ist.WrTmp.data->Iex.Load.ty), NULL);
            break;
        case Ist_Store:
            add_ref(&c, VGR_WRITE, st->Ist.Store.addr,
                    sizeofIRType(typeOfIRExpr(in->tyenv, st->Ist.Store.data)), NULL);
            break;
        case Ist_StoreG: {
            IRStoreG *sg = st->Ist.StoreG.details;
            add_ref(&c, VGR_WRITE, sg->addr, sizeofIRType(typeOfIRExpr(in->tyenv, sg->data)),
                    sg->guard);
            break;
        }
        case Ist_LoadG: {
            IRLoadG *lg = st->Ist.LoadG.details;
            IRType ty = Ity_INVALID, wide = Ity_INVALID;
            typeOfIRLoadGOp(lg->cvt, &wide, &ty);
            add_ref(&c, VGR_READ, lg->addr, sizeofIRType(ty), lg->guard);
            break;
        }
        case Ist_Dirty: {
            IRDirty *d = st->Ist.Dirty.details;
            if (d->mFx == Ifx_Read || d->mFx == Ifx_Modify)
                add_ref(&c, VGR_READ, d->mAddr, (UInt)d->mSize, NULL);
            if (d->mFx == Ifx_Write || d->mFx == Ifx_Modify)
                add_ref(&c, VGR_WRITE, d->mAddr, (UInt)d->mSize, NULL);
            break;
        }
        case Ist_CAS: {
            IRCAS *cas = st->Ist.CAS.details;
            UInt sz = sizeofIRType(typeOfIRExpr(in->tyenv, cas->dataLo));
            if (cas->dataHi)
                sz *= 2;
            add_ref(&c, VGR_READ, cas->addr, sz, NULL);
            add_ref(&c, VGR_WRITE, cas->addr, sz, NULL);
            break;
        }
        case Ist_LLSC:
            if (!st->Ist.LLSC.storedata)
                add_ref(&c, VGR_READ, st->Ist.LLSC.addr,
                        sizeofIRType(typeOfIRTemp(in->tyenv, st->Ist.LLSC.result)), NULL);
            else
                add_ref(&c, VGR_WRITE, st->Ist.LLSC.addr,
                        sizeofIRType(typeOfIRExpr(in->tyenv, st->Ist.LLSC.storedata)), NULL);
            break;
        case Ist_Exit:
            publish(&c); /* the records so far must survive a taken side exit */
            break;
        default:
            break;
        }
        /* The references of an instruction are stored before the statement that makes
         * them runs, except those still pending (merged with a later store). */
        addStmtToIRSB(c.sb, st);
    }
    publish(&c);
    return c.sb;
}

/* ---- start and finish -------------------------------------------------------------- */

static void vgr_post_clo_init(void)
{
    if (!clo_out) {
        VG_(message)(Vg_UserMsg, "vgrecord: no --vgr-out=PATH: nothing is recorded\n");
        return;
    }
    /* Non-blocking open: a FIFO nobody reads fails (ENXIO) instead of hanging. A regular
     * file is created if needed and appended to (each exec opens it again). */
    SysRes r = VG_(open)(clo_out, VKI_O_WRONLY | VKI_O_NONBLOCK | VKI_O_CREAT | VKI_O_APPEND, 0644);
    if (sr_isError(r)) {
        VG_(message)(Vg_UserMsg, "vgrecord: cannot open %s (errno %lu): nothing is recorded\n",
                     clo_out, sr_Err(r));
        return;
    }
    Int fd = (Int)sr_Res(r);
    VG_(fcntl)(fd, VKI_F_SETFL, 0); /* blocking writes from now on */
    vgr_fd = VG_(safe_fd)(fd);       /* out of the client's reach (and close-on-exec) */
    vgr_shared = clo_root != 0 && VG_(getpid)() != clo_root;
}

static void vgr_fini(Int exitcode)
{
    (void)exitcode;
    if (vgr_fd < 0)
        return;
    vgr_nrefs += (ULong)(vgr_pos - (vgr_buf + 2));
    put_ctl(VGR_C_END, NULL, 0);
    flush();
    VG_(close)(vgr_fd);
    vgr_fd = -1;
}

static void vgr_pre_clo_init(void)
{
    VG_(details_name)("vgrecord");
    VG_(details_version)("1.0");
    VG_(details_description)("records memory references and kernel events for vmsim");
    VG_(details_copyright_author)("Copyright (C) 2025 the vmsim authors; GPL-2.0-or-later.");
    VG_(details_bug_reports_to)("the vmsim project");
    VG_(details_avg_translation_sizeB)(400);

    VG_(basic_tool_funcs)(vgr_post_clo_init, vgr_instrument, vgr_fini);
    VG_(needs_command_line_options)(vgr_process_cmd_line_option, vgr_print_usage,
                                    vgr_print_debug_usage);
    VG_(needs_syscall_wrapper)(vgr_pre_syscall, vgr_post_syscall);
    VG_(track_start_client_code)(vgr_start_client_code);
    VG_(track_pre_thread_ll_exit)(vgr_thread_exit);
    VG_(track_post_mem_write)(vgr_post_mem_write);
}

VG_DETERMINE_INTERFACE_VERSION(vgr_pre_clo_init)
