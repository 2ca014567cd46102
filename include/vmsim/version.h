/*
 * vmsim/version.h — which vmsim this is. The version is the project's X.Y.Z (CMakeLists
 * project()); the build description is `git describe --always --dirty --tags` of the
 * checkout it was built from, captured at build time, or "" when it was built from a
 * tarball or without git. `vmsim --version` prints "vmsim X.Y.Z" and, when there is a
 * description, " (git DESCRIBE)"; every JSON result carries both ("version", "build").
 */
#ifndef VMSIM_VERSION_H
#define VMSIM_VERSION_H

/* "X.Y.Z" (a static string). */
const char *vms_version(void);

/* The git description of the build ("" when none; a static string). */
const char *vms_version_build(void);

#endif
