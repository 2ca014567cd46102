/* version.c — the version and build description (vmsim/version.h), from the header that
 * cmake/version.cmake generates at build time. */
#include "vmsim/version.h"

#include "vmsim_version.h"

const char *vms_version(void)
{
    return VMS_VERSION_TEXT;
}

const char *vms_version_build(void)
{
    return VMS_GIT_DESCRIBE;
}
