/*
 * vmsim/mman.h — memory-management system calls (mmap, munmap, mprotect, brk, mlock,
 * madvise, msync), files and shared-memory objects.
 *
 * Flag values are Linux's (include/uapi/asm-generic/mman-common.h, x86-64), so traces
 * and scenario files can pass them through. Errors Linux reports as errno are returned
 * as statuses with a message in err:
 *   EINVAL -> VMS_ERR_INVAL   (bad alignment, length, flags, offset)
 *   EEXIST -> VMS_ERR_EXISTS  (MAP_FIXED_NOREPLACE over an existing mapping)
 *   ENOMEM -> VMS_ERR_RANGE   (no room in the address space, range not mapped)
 *   ENODEV/EACCES -> VMS_ERR_UNSUPPORTED
 * A host allocation failure is VMS_ERR_NOMEM, simulated memory exhaustion while
 * populating (MAP_POPULATE, mlock) is VMS_ERR_NOTFOUND; either way the address space is
 * left consistent (a populate failure keeps the mapping, as Linux does).
 *
 * Every call charges the syscall cost to the caller's core and acts on the caller's
 * address space; a dead task gets VMS_ERR_INVAL.
 */
#ifndef VMSIM_MMAN_H
#define VMSIM_MMAN_H

#include "vmsim/proc.h"

/* prot */
#define VMS_PROT_NONE  0x0u
#define VMS_PROT_READ  0x1u
#define VMS_PROT_WRITE 0x2u
#define VMS_PROT_EXEC  0x4u

/* flags */
#define VMS_MAP_SHARED          0x01u
#define VMS_MAP_PRIVATE         0x02u
#define VMS_MAP_FIXED           0x10u
#define VMS_MAP_ANONYMOUS       0x20u
#define VMS_MAP_GROWSDOWN       0x100u
#define VMS_MAP_LOCKED          0x2000u
#define VMS_MAP_NORESERVE       0x4000u /* hugetlb: no reservation at mmap (SIGBUS later) */
#define VMS_MAP_POPULATE        0x8000u
#define VMS_MAP_HUGETLB         0x40000u
#define VMS_MAP_FIXED_NOREPLACE 0x100000u
#define VMS_MAP_HUGE_SHIFT      26
#define VMS_MAP_HUGE_2MB        (21u << VMS_MAP_HUGE_SHIFT) /* with MAP_HUGETLB */
#define VMS_MAP_HUGE_1GB        (30u << VMS_MAP_HUGE_SHIFT)

/* madvise advice */
#define VMS_MADV_DONTNEED   4
#define VMS_MADV_HUGEPAGE   14 /* transparent huge pages for the range (thp = madvise) */
#define VMS_MADV_NOHUGEPAGE 15 /* none for the range (also under thp = always) */

/* msync flags */
#define VMS_MS_ASYNC      1u
#define VMS_MS_INVALIDATE 2u
#define VMS_MS_SYNC       4u

/* A file or shared-memory object (an inode with a page cache). Owned by the kernel,
 * reference counted: each open and each mapping holds a reference. */
typedef struct vms_file vms_file;

/*
 * Open host file `path` read-only as a simulated file. Opening the same path again
 * returns the same object (one page cache per file). Its pages are read from the host
 * file on demand; MAP_SHARED writes are written back (msync, munmap, exit) to a copy,
 * writeback_dir/<basename>, created on the first writeback from the original's bytes —
 * never to the original unless the kernel's config says writeback_in_place.
 * VMS_ERR_IO (naming the path) if the host file cannot be opened.
 */
vms_status vms_file_open(vms_kernel *k, const char *path, vms_file **out, vms_err *err);

/* Drop the reference vms_file_open or vms_shm_open gave. Mappings keep theirs. */
void vms_file_close(vms_kernel *k, vms_file *f);

/* Size in bytes (for shm: as set by vms_shm_open). */
uint64_t vms_file_size(const vms_file *f);

/* The host path that writeback writes to (the copy, or the original in place); NULL
 * for shared memory. */
const char *vms_file_writeback_path(const vms_file *f);

/* Pages of f currently in the page cache. */
uint64_t vms_file_cached_pages(const vms_file *f);

/*
 * shm_open(name, O_CREAT) + ftruncate(len): the named shared-memory object `name`
 * (created with len bytes, rounded up to pages, if it does not exist; an existing one
 * keeps its size). Unrelated processes mapping it MAP_SHARED see the same frames.
 */
vms_status vms_shm_open(vms_kernel *k, const char *name, uint64_t len, vms_file **out,
                        vms_err *err);

/* shm_unlink: forget the name; the object lives while references remain. */
vms_status vms_shm_unlink(vms_kernel *k, const char *name, vms_err *err);

/*
 * hugetlbfs (docs/HUGEPAGES.md "hugetlbfs files"). Files on a hugetlbfs mount are kernel
 * objects of the simulation, never host files: their pages are pool pages (hugetlb.c) of
 * the mount's size, their page cache indexed in huge pages.
 *  vms_hugetlbfs_mount  mount -t hugetlbfs none PATH -o pagesize=SIZE: PATH absolute
 *                       ("/mnt/huge"), not mounted yet; pagesize VMS_PG_2M or VMS_PG_1G,
 *                       VMS_PG_4K for the default (kernel.default_hugepagesz).
 *  vms_hugetlbfs_open   open(PATH, O_RDWR | (create ? O_CREAT : 0)) of MOUNT/NAME (NAME
 *                       without '/'): a new file is empty (size 0). The name holds one
 *                       reference, *out another (vms_file_close). VMS_ERR_NOTFOUND when
 *                       PATH is on no mount, or (without create) no such file.
 *  vms_hugetlbfs_is     whether PATH names a file on a hugetlbfs mount.
 *  vms_sys_truncate     truncate(PATH, len): len must be a multiple of the huge page size
 *                       (EINVAL: VMS_ERR_INVAL); shrinking unmaps the pages beyond it from
 *                       every process, frees them and gives back their reservations.
 *  vms_sys_unlink       unlink(PATH): the name goes; the file lives while mapped or open.
 * mmap of such a file (MAP_SHARED or MAP_PRIVATE, no MAP_HUGETLB needed) maps huge pages:
 * offset and addr aligned to the huge size; a writable mapping extends the file to its
 * end (hugetlbfs_file_mmap).
 */
vms_status vms_hugetlbfs_mount(vms_kernel *k, const char *path, vms_pgsize pagesize, vms_err *err);
vms_status vms_hugetlbfs_open(vms_kernel *k, const char *path, bool create, vms_file **out,
                              vms_err *err);
bool vms_hugetlbfs_is(const vms_kernel *k, const char *path);
vms_status vms_sys_truncate(vms_kernel *k, const char *path, uint64_t len, vms_err *err);
vms_status vms_sys_unlink(vms_kernel *k, const char *path, vms_err *err);

/*
 * mmap(addr, len, prot, flags, file, offset). Exactly one of MAP_SHARED / MAP_PRIVATE;
 * MAP_ANONYMOUS means file must be NULL (MAP_SHARED|MAP_ANONYMOUS creates a shmem object
 * shared with future fork children). Without MAP_FIXED*, addr is a hint used only when
 * the range is free, otherwise the kernel picks the highest free range below mmap_base
 * (top-down, as Linux's arch_get_unmapped_area_topdown). MAP_FIXED replaces whatever was
 * there; MAP_FIXED_NOREPLACE fails with VMS_ERR_EXISTS instead. MAP_HUGETLB with
 * MAP_HUGE_2MB / _1GB (anonymous; MAP_SHARED makes an unnamed hugetlbfs file shared with
 * fork children) maps explicit huge pages: addr and len are then
 * aligned to the huge size. MAP_POPULATE prefaults; MAP_LOCKED is mmap + mlock.
 * *out receives the mapping's address.
 */
vms_status vms_sys_mmap(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len, unsigned prot,
                        unsigned flags, vms_file *file, uint64_t offset, uint64_t *out,
                        vms_err *err);

/* munmap: unmap [addr, addr+len) (page aligned addr; len rounded up), splitting VMAs;
 * shared dirty file pages are written back; TLBs are shot down. Unmapped holes are fine. */
vms_status vms_sys_munmap(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len, vms_err *err);

/* mprotect: change the protection of [addr, addr+len), which must be fully mapped
 * (VMS_ERR_RANGE otherwise, nothing changed). Splits VMAs, rewrites PTEs (never granting
 * write to a COW or zero page), shoots down TLBs. */
vms_status vms_sys_mprotect(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len, unsigned prot,
                            vms_err *err);

/*
 * Protection keys (x86-64 with CR4.PKE: kernel.pke; Linux pkeys(7)). A page's key (PTE
 * bits 62:59) selects two bits of the running thread's PKRU: AD forbids every data
 * access to the page, WD writes — for user and kernel accesses to user pages alike,
 * never instruction fetches. Each thread has its own PKRU (a new program's is
 * 0x55555554: every key but 0 access-disabled); clone and fork copy it.
 *  pkey_alloc     the lowest free key of t's address space (1 … 15) into *pkey, and t's
 *                 PKRU for it set to rights (VMS_PKEY_DISABLE_ACCESS | _WRITE); flags
 *                 must be 0. VMS_ERR_INVAL for bad flags or rights, VMS_ERR_UNSUPPORTED
 *                 (ENOSPC) when every key is taken or the kernel has no PKE.
 *  pkey_free      gives the key back (pages keep it); VMS_ERR_INVAL if not allocated.
 *  pkey_mprotect  mprotect that also sets the range's key (pkey -1: plain mprotect);
 *                 VMS_ERR_INVAL for a key not allocated.
 * vms_task_wrpkru is the thread's WRPKRU (VMS_ERR_UNSUPPORTED without PKE: #UD);
 * vms_task_pkru reads its PKRU.
 */
#define VMS_NR_PKEYS            16
#define VMS_PKEY_DISABLE_ACCESS 1u
#define VMS_PKEY_DISABLE_WRITE  2u
vms_status vms_sys_pkey_alloc(vms_kernel *k, vms_task *t, unsigned flags, unsigned rights,
                              int *pkey, vms_err *err);
vms_status vms_sys_pkey_free(vms_kernel *k, vms_task *t, int pkey, vms_err *err);
vms_status vms_sys_pkey_mprotect(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len,
                                 unsigned prot, int pkey, vms_err *err);
vms_status vms_task_wrpkru(vms_kernel *k, vms_task *t, uint32_t pkru, vms_err *err);
uint32_t vms_task_pkru(const vms_task *t);

/* brk: set the program break to brk (0 queries). *out gets the new break (the old one
 * if the request could not be met, as Linux). Shrinking unmaps. */
vms_status vms_sys_brk(vms_kernel *k, vms_task *t, uint64_t brk, uint64_t *out, vms_err *err);

/* mlock / munlock: populate the range and mark VMAs locked and their frames LOCKED;
 * munlock undoes it. The range must be fully mapped (VMS_ERR_RANGE). */
vms_status vms_sys_mlock(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len, vms_err *err);
vms_status vms_sys_munlock(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len, vms_err *err);

/* madvise: MADV_DONTNEED (zap the range: anonymous pages read as zeros afterwards, file
 * pages are re-read from the page cache; locked VMAs: VMS_ERR_INVAL), MADV_HUGEPAGE and
 * MADV_NOHUGEPAGE (mark the range's VMAs for transparent huge pages or against them;
 * docs/HUGEPAGES.md). A range not fully mapped: VMS_ERR_RANGE. */
vms_status vms_sys_madvise(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len, int advice,
                           vms_err *err);

/* msync: write back the dirty pages of shared file mappings in the range. */
vms_status vms_sys_msync(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len, unsigned flags,
                         vms_err *err);

#endif
