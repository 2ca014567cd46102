/*
 * vmsim/ram.h — physical memory: real bytes, held sparsely.
 *
 * RAM is indexed by physical frame number (pfn = pa >> 12) over [0, limit). A frame
 * costs host memory only once something writes it; reading a never-written frame
 * returns zeros. The bus (bus.h) decides which physical ranges are RAM; this module
 * only stores bytes. Invariant: a frame's host page, once allocated, lives until the
 * RAM is destroyed or the frame is discarded (vms_ram_discard), so pointers handed out
 * by vms_ram_frame stay valid in between.
 */
#ifndef VMSIM_RAM_H
#define VMSIM_RAM_H

#include "vmsim/common.h"

typedef struct vms_ram vms_ram;

/* Largest supported physical address space: 2^46 bytes (64 TiB, MAXPHYADDR 46). */
#define VMS_RAM_MAX_LIMIT (UINT64_C(1) << 46)

/*
 * Create RAM covering physical addresses [0, limit). limit must be a non-zero multiple
 * of 4 KiB and at most VMS_RAM_MAX_LIMIT; a (NULL = default) is borrowed for the RAM's
 * lifetime. Host memory used at creation is small (a table of chunk pointers).
 */
vms_status vms_ram_create(const vms_allocator *a, uint64_t limit, vms_ram **out, vms_err *err);

/* Free the RAM and every frame it holds. NULL is accepted. */
void vms_ram_destroy(vms_ram *ram);

/* The exclusive upper bound of physical addresses this RAM stores. */
uint64_t vms_ram_limit(const vms_ram *ram);

/* How many frames currently hold host memory (have been written). */
uint64_t vms_ram_resident_frames(const vms_ram *ram);

/*
 * The host bytes of frame pfn. With create=false returns NULL for a never-written frame
 * (whose contents are zeros); with create=true allocates a zeroed frame first, returning
 * NULL only if the host allocation fails or pfn is out of range.
 */
uint8_t *vms_ram_frame(vms_ram *ram, uint64_t pfn, bool create);

/* Forget a frame's contents (it reads as zeros again and costs no host memory). */
void vms_ram_discard(vms_ram *ram, uint64_t pfn);

/*
 * Block accessors: copy len bytes between pa and buf; may cross frames. Return
 * VMS_ERR_RANGE if [pa, pa+len) is not inside [0, limit), VMS_ERR_NOMEM if a write could
 * not allocate a frame (nothing is written then). Little-endian, as x86.
 */
vms_status vms_ram_read(vms_ram *ram, uint64_t pa, void *buf, size_t len);
vms_status vms_ram_write(vms_ram *ram, uint64_t pa, const void *buf, size_t len);

/* Fill [pa, pa+len) with byte c (c == 0 on whole frames discards them). */
vms_status vms_ram_fill(vms_ram *ram, uint64_t pa, int c, size_t len);

/* Copy one whole 4 KiB frame to another (COW's copy). */
vms_status vms_ram_copy_frame(vms_ram *ram, uint64_t dst_pfn, uint64_t src_pfn);

/* Scalar accessors (naturally sized, may be unaligned). Out-of-range reads return
 * VMS_ERR_RANGE and leave *val untouched. */
vms_status vms_ram_read8(vms_ram *ram, uint64_t pa, uint8_t *val);
vms_status vms_ram_read16(vms_ram *ram, uint64_t pa, uint16_t *val);
vms_status vms_ram_read32(vms_ram *ram, uint64_t pa, uint32_t *val);
vms_status vms_ram_read64(vms_ram *ram, uint64_t pa, uint64_t *val);
vms_status vms_ram_write8(vms_ram *ram, uint64_t pa, uint8_t val);
vms_status vms_ram_write16(vms_ram *ram, uint64_t pa, uint16_t val);
vms_status vms_ram_write32(vms_ram *ram, uint64_t pa, uint32_t val);
vms_status vms_ram_write64(vms_ram *ram, uint64_t pa, uint64_t val);

#endif
