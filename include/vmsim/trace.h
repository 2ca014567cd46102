/*
 * vmsim/trace.h — memory traces in and out (DESIGN.md: "trace readers").
 *
 * A reader streams events from a file (or stdin, "-") in one of four formats, one event
 * per call, in constant memory whatever the trace length:
 *
 *   native    vmsim's own compressed format (docs/TRACE_FORMAT.md): memory references
 *             plus the kernel events of a recorded Linux program (segment map, mmap,
 *             munmap, mprotect, brk, madvise, fork/clone/vfork, exec, exit, kernel writes)
 *   lackey    valgrind --tool=lackey --trace-mem=yes text ("I  addr,size", " L …")
 *   dinero    Dinero III/IV "din" text ("LABEL ADDRESS")
 *   champsim  ChampSim 64-byte input_instr records (plain, .gz or .xz)
 *
 * Gzip, xz and zstd compression of any input is recognised by its magic bytes, not by
 * the file name. A writer produces native, lackey or dinero traces.
 *
 * Errors (VMS_ERR_IO, VMS_ERR_PARSE, VMS_ERR_UNSUPPORTED, VMS_ERR_NOMEM) name the file,
 * then the line ("t.txt:12: …") for text formats or the byte offset in the uncompressed
 * stream ("t.vmt: byte 4096: …") for binary ones, and say what was expected.
 */
#ifndef VMSIM_TRACE_H
#define VMSIM_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmsim/common.h"

/* Trace formats. VMS_TRACE_AUTO detects the format from the first bytes. */
typedef enum vms_trace_format {
    VMS_TRACE_AUTO = 0,
    VMS_TRACE_NATIVE,
    VMS_TRACE_LACKEY,
    VMS_TRACE_DINERO,
    VMS_TRACE_CHAMPSIM,
} vms_trace_format;

/* "auto", "native", "lackey", "dinero", "champsim"; never NULL. */
const char *vms_trace_format_name(vms_trace_format f);

/* Parse a format name (as printed by vms_trace_format_name). VMS_ERR_NOTFOUND if unknown. */
vms_status vms_trace_format_parse(const char *name, vms_trace_format *out, vms_err *err);

/* What an event is. Only VMS_TEV_ACCESS occurs outside the native format. */
typedef enum vms_trace_type {
    VMS_TEV_ACCESS = 0, /* a memory reference by a thread */
    VMS_TEV_MAP,        /* a segment present when recording began (/proc/PID/maps) */
    VMS_TEV_MMAP,       /* mmap(2) and its result */
    VMS_TEV_MUNMAP,     /* munmap(2) */
    VMS_TEV_MPROTECT,   /* mprotect(2) */
    VMS_TEV_BRK,        /* brk(2): requested break and the break the kernel returned */
    VMS_TEV_MADVISE,    /* madvise(2) */
    VMS_TEV_CLONE,      /* fork/clone: `tid` made `child` */
    VMS_TEV_EXIT,       /* a thread (or, with group, the whole process) exited */
    VMS_TEV_KWRITE,     /* the kernel wrote user memory (read(2), recvmsg, …) */
    VMS_TEV_EXEC,       /* execve(2) succeeded: a fresh address space (native 1.1) */
    VMS_TEV_NTYPES
} vms_trace_type;

/* Access kinds. MODIFY is a read then a write of the same bytes (lackey's 'M', x86
 * read-modify-write instructions); the replay issues both. Values 0..2 equal
 * vms_access_kind's, so (vms_access_kind)kind is valid for all but MODIFY. */
typedef enum vms_trace_acc {
    VMS_TACC_READ = VMS_ACC_READ,
    VMS_TACC_WRITE = VMS_ACC_WRITE,
    VMS_TACC_EXEC = VMS_ACC_EXEC,
    VMS_TACC_MODIFY = 3,
} vms_trace_acc;

/* Protection bits of MAP, MMAP and MPROTECT: Linux's PROT_READ/WRITE/EXEC values. */
#define VMS_TPROT_READ  0x1u
#define VMS_TPROT_WRITE 0x2u
#define VMS_TPROT_EXEC  0x4u
#define VMS_TPROT_ALL   0x7u

/* Mapping flags of MAP and MMAP (vmsim's own bits, not Linux's MAP_* values). */
#define VMS_TMAP_SHARED    0x01u /* MAP_SHARED (clear: MAP_PRIVATE) */
#define VMS_TMAP_ANON      0x02u /* anonymous (clear: file-backed, `path` at `off`) */
#define VMS_TMAP_FIXED     0x04u /* MAP_FIXED: `addr` was mandatory */
#define VMS_TMAP_POPULATE  0x08u /* MAP_POPULATE / mlocked: prefault */
#define VMS_TMAP_HUGETLB   0x10u /* MAP_HUGETLB */
#define VMS_TMAP_NORESERVE 0x20u /* MAP_NORESERVE */
#define VMS_TMAP_GROWSDOWN 0x40u /* MAP_GROWSDOWN (a stack) */
#define VMS_TMAP_ALL       0x7fu

/* CLONE flags. VM alone: a thread. VM|VFORK: vfork(2) — a new process running in its
 * parent's address space until it execs or exits (its EXEC, not munmap, ends the
 * sharing). VFORK alone (traces written before native 1.1): a vfork run as a fork. */
#define VMS_TCLONE_VM    0x1u /* CLONE_VM: the child shares the address space */
#define VMS_TCLONE_VFORK 0x2u /* CLONE_VFORK: the parent waits until the child execs/exits */
#define VMS_TCLONE_ALL   0x3u

/* The result of a failed mmap (MAP_FAILED, i.e. (void *)-1). */
#define VMS_TRACE_MAP_FAILED UINT64_MAX

/*
 * One event: 48 bytes, fixed size, no pointers. `tid` is the thread that did it (the
 * process id for single-threaded traces; 0 in lackey, dinero and ChampSim traces, which
 * record one thread). Which union member is valid follows `type`. Paths are ids into the
 * reader's string table (vms_trace_reader_path), 0 meaning none. Readers zero the whole
 * struct before filling it, so two events can be compared with memcmp.
 *
 *  off 0   type (u8)  | 1..3 zero | 4 tid (u32)
 *  off 8   the member for `type`, up to 40 bytes
 */
typedef struct vms_trace_event {
    uint8_t type; /* vms_trace_type */
    uint8_t reserved_[3];
    uint32_t tid;
    union {
        struct {
            uint64_t va;   /* first byte; the reference may cross pages (replay splits) */
            uint32_t size; /* bytes, >= 1 */
            uint8_t kind;  /* vms_trace_acc */
        } access;
        struct {
            uint64_t start, end; /* [start, end), page-aligned */
            uint64_t off;        /* file offset of `start` (file mappings) */
            uint32_t path;       /* file, or a label such as "[stack]", "[heap]"; 0: none */
            uint8_t prot;        /* VMS_TPROT_* */
            uint8_t flags;       /* VMS_TMAP_* */
        } map;
        struct {
            uint64_t addr; /* the address argument (a hint unless VMS_TMAP_FIXED) */
            uint64_t len;  /* bytes */
            uint64_t off;  /* file offset */
            uint64_t ret;  /* the address returned, or VMS_TRACE_MAP_FAILED */
            uint32_t path; /* the file behind the fd; 0 for anonymous mappings */
            uint8_t prot;  /* VMS_TPROT_* */
            uint8_t flags; /* VMS_TMAP_* */
        } mmap;
        struct {
            uint64_t addr, len;
        } munmap;
        struct {
            uint64_t addr, len;
            uint8_t prot; /* VMS_TPROT_* */
        } mprotect;
        struct {
            uint64_t addr; /* requested break (0 queries the break) */
            uint64_t ret;  /* the break after the call */
        } brk;
        struct {
            uint64_t addr, len;
            uint32_t advice; /* Linux's MADV_* number (MADV_DONTNEED = 4, MADV_FREE = 8, …) */
        } madvise;
        struct {
            uint32_t child; /* the new thread's or process's id */
            uint8_t flags;  /* VMS_TCLONE_* */
        } clone;
        struct {
            int32_t status; /* exit status */
            uint8_t group;  /* 1: exit_group, every thread of the process ends */
        } exit;
        struct {
            uint64_t va, len; /* bytes the kernel stored into user memory */
        } kwrite;
        struct {
            uint32_t path; /* the program (execve's path argument); 0: unknown */
        } exec;
    };
} vms_trace_event;

_Static_assert(sizeof(vms_trace_event) == 48, "vms_trace_event is 48 bytes");

/* "access", "map", "mmap", …; "?" for an unknown type. */
const char *vms_trace_type_name(unsigned type);

/* "read", "write", "exec", "modify"; "?" otherwise. */
const char *vms_trace_acc_name(unsigned kind);

/*
 * Describe ev in one line ("tid 7 mmap addr=0x0 len=0x2000 prot=rw- flags=private,anon
 * off=0x0 path=0 -> 0x7f0000000000") into buf (always NUL-terminated when len > 0).
 * Returns the length snprintf would have written.
 */
int vms_trace_event_format(const vms_trace_event *ev, char *buf, size_t len);

/* ---- reading ---------------------------------------------------------------------- */

typedef struct vms_trace_reader vms_trace_reader;

/*
 * Open path ("-": standard input) as a trace of format fmt (VMS_TRACE_AUTO: detect).
 * Allocations go through a (NULL: the default allocator). On success *out owns the open
 * file; close it with vms_trace_reader_close. On failure *out is NULL and err says why.
 */
vms_status vms_trace_reader_open(const char *path, vms_trace_format fmt, const vms_allocator *a,
                                 vms_trace_reader **out, vms_err *err);

/*
 * The same over len bytes at data (borrowed: they must outlive the reader); name is
 * used in messages (copied). For tests and fuzzing.
 */
vms_status vms_trace_reader_open_mem(const void *data, size_t len, const char *name,
                                     vms_trace_format fmt, const vms_allocator *a,
                                     vms_trace_reader **out, vms_err *err);

/*
 * Read the next event into *ev. Returns true with an event; false at the end of the
 * trace (err->status == VMS_OK) or on a failure (err filled; the reader stays failed and
 * every later call returns the same failure). err may be NULL (see
 * vms_trace_reader_error).
 */
bool vms_trace_read(vms_trace_reader *r, vms_trace_event *ev, vms_err *err);

/*
 * The batch read: decode the run of plain accesses (read, write, fetch; not modify) of
 * thread tid that starts at the next event straight into refs[0, max) — va, size as len,
 * kind — exactly as that many vms_trace_read calls would return them, and return how
 * many (0..max). It stops before anything else: a kernel event, a modify, an access of
 * another thread, or a record it leaves to vms_trace_read (a malformed one, whose error
 * vms_trace_read then reports with the same file, line or byte). The reader's count and
 * position advance as if the events had been read one by one, so the two calls mix
 * freely. Returns 0 for formats without a batch decoder (ChampSim) and once failed.
 */
size_t vms_trace_read_refs(vms_trace_reader *r, uint32_t tid, vms_ref *refs, size_t max);

/* The reader's failure so far (status VMS_OK while none); never NULL. */
const vms_err *vms_trace_reader_error(const vms_trace_reader *r);

/* The format being read (never VMS_TRACE_AUTO once open). */
vms_trace_format vms_trace_reader_format(const vms_trace_reader *r);

/* The string with id `id` (event paths), or NULL for 0 and ids not yet defined. Valid
 * until the reader is closed. */
const char *vms_trace_reader_path(const vms_trace_reader *r, uint32_t id);

/* Events returned so far. */
uint64_t vms_trace_reader_count(const vms_trace_reader *r);

/* Bytes of the file (compressed, if it is) read so far, in whole read-ahead windows: with
 * the file's size, how far along a reader is (progress and ETA). */
uint64_t vms_trace_reader_file_offset(const vms_trace_reader *r);

/*
 * Read ahead on a thread: wrap the open reader `in` (taken: the wrapper closes it; on
 * failure it is closed at once) in a reader whose own thread decodes `in` — file reads,
 * decompression, parsing, checksums — into a bounded ring of chunks (about 1.2 MiB, at
 * most 32768 references ahead of the caller), while the caller takes them through the
 * usual calls. Every call answers as it would on `in`: the same events, batch reads,
 * count, format, paths, and the same failure after the same events — except that a
 * failure of the byte stream itself (an unreadable file, corrupt compressed data) may
 * come a few records earlier or later than on `in` (same message): where `in` finds it
 * depends on how the calls cut its decoding window. A failure is reported only once the
 * caller reads past the events before it (a replay stopped by its limit never sees what
 * lies beyond). The allocator of `in` must be usable from two threads (the default is).
 * Closing stops the thread; it finishes the read it is in first (on a pipe, until data or
 * the end comes). On failure (no host memory, no thread) *out is NULL and err says why.
 */
vms_status vms_trace_reader_pipeline(vms_trace_reader *in, vms_trace_reader **out, vms_err *err);

/* Close the file and free everything; r may be NULL. */
void vms_trace_reader_close(vms_trace_reader *r);

/* ---- writing ---------------------------------------------------------------------- */

typedef struct vms_trace_writer vms_trace_writer;

/* Writer options; a NULL pointer means all defaults. */
typedef struct vms_trace_writer_opts {
    int zstd_level; /* native: zstd level 1..19 (0: default, 3) */
    bool raw;       /* native: store the payload uncompressed (debugging, fuzz corpora) */
} vms_trace_writer_opts;

/*
 * Create path ("-": standard output) as a trace of format fmt: native, lackey or dinero
 * (VMS_ERR_UNSUPPORTED for others). On failure *out is NULL and err says why.
 */
vms_status vms_trace_writer_open(const char *path, vms_trace_format fmt,
                                 const vms_trace_writer_opts *opts, const vms_allocator *a,
                                 vms_trace_writer **out, vms_err *err);

/*
 * Intern a string (a file path or label) and return its id for event paths (>= 1; the
 * same string always gets the same id). Native writes define it in the stream; text
 * formats accept and ignore it.
 */
vms_status vms_trace_writer_intern(vms_trace_writer *w, const char *s, uint32_t *id, vms_err *err);

/*
 * Append one event. Lackey and dinero take only VMS_TEV_ACCESS (VMS_ERR_UNSUPPORTED for
 * kernel events) and drop tid; dinero also drops the size and writes MODIFY as a read
 * then a write. An invalid event (bad kind, size 0, undefined path id, unknown flag bits)
 * is VMS_ERR_INVAL. A failed writer stays failed.
 */
vms_status vms_trace_writer_write(vms_trace_writer *w, const vms_trace_event *ev, vms_err *err);

/* Finish the trace (native: the end record and the zstd epilogue), close the file and
 * free w, also on failure. w may be NULL. Returns the first failure of the writer's life. */
vms_status vms_trace_writer_close(vms_trace_writer *w, vms_err *err);

#endif
