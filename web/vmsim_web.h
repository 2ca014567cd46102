/*
 * vmsim_web.h — the web visualizer's glue (vmsim_web.c): one scenario session driven a
 * command at a time, its state as JSON. The page calls these through emscripten's
 * ccall; tests/test_web.c calls them natively. Every function returns JSON text owned
 * by the session, valid until the next call; failures are {"ok":false,"error":"…"}.
 */
#ifndef VMSIM_WEB_H
#define VMSIM_WEB_H

/* Parse and configure a scenario (name for messages, its text; preset NULL or "" for
 * the default; sets: KEY=VALUE lines applied after the scenario's own `set` lines, as
 * `vmsim run --set`), boot the machine and kernel, and stand before its first command.
 * {"ok":true,"version","preset","cores","levels"} or the parse/configuration error. */
const char *vw_load(const char *name, const char *text, const char *preset, const char *sets);

/* Run the next command: {"ok":true,"line","status","done","out" (its narration),"err"
 * (failures),"log" (kernel log lines),"events" (what the event tap, vmsim/events.h,
 * reported during the command: "total", "counts" by type, "read" (the entries walks read,
 * with the A/D bits they set) and "written" (the entries the kernel wrote) as physical
 * addresses, and lists of whole events (docs/EVENTS.md fields): "fills" (TLB fills),
 * "faults" (fault, fault_resolved), "swap", "io" (dma, iommu), "flushes" (invalidations,
 * TLB instructions, shootdowns, IPIs), "timeline" (the first 300 events of any type);
 * each list at most 128 long, with "<list>_dropped" counting the rest),"access":{"proc",
 * "va","len","kind","path"} (when it was an access; path: the entries a walk of it reads
 * now)}; after the last command the run is finished (devices detached) and done. */
const char *vw_step(void);

/* The counters as `vmsim run --stats json` prints them (version, build, config, seed,
 * the machine's and kernel's members, scenario), without the input member, plus
 * "finished". */
const char *vw_stats(void);

/* The state: cores (CR3, TLB entries per level, PWC fill per level, walk counters),
 * processes (maps, the page-table tree read from RAM with each leaf's frame sharing or
 * swap slot), fault and swap counters, frames, the IOMMU (`show iommu`; once the run has
 * finished, as its last command left it, with "iommu_final") and dmesg. */
const char *vw_state(void);

/* Narrate the translation of va_text ("0x…") for process proc (a name or pid) as the
 * tables and TLBs are now, read only: {"ok":true,"text"}. kind: read, write or exec. */
const char *vw_explain(const char *proc, const char *va_text, const char *kind, int supervisor);

/* The scenario commands' usage lines and the machine presets, as JSON arrays. */
const char *vw_commands(void);
const char *vw_presets(void);

/* Drop the session (vw_load does it first). */
void vw_unload(void);

#endif
