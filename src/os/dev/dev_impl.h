/*
 * dev_impl.h — what the rest of the kernel calls in the devices district (src/os/dev):
 * the DMA layer's shutdown. Nothing outside src/os includes it.
 */
#ifndef VMSIM_OS_DEV_IMPL_H
#define VMSIM_OS_DEV_IMPL_H

#include "os/os_impl.h"

/* ---- dma.c ---- */
/* Detach every device and free the DMA layer (vms_kernel_destroy, before processes go). */
void vmsi_dma_shutdown(vms_kernel *k);

#endif
