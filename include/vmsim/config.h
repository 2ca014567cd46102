/*
 * vmsim/config.h — every knob of the machine and the kernel, settable by name.
 *
 * A vms_config holds a machine configuration and a kernel configuration, starting from a
 * preset. Keys are set one at a time (`--set key=value` on the command line) or from a
 * file in INI syntax (parsed by inih, Debian's libinih):
 *
 *     # comment                 ; comment
 *     preset = skylake          # replaces everything set before it
 *     ram = 16M
 *     [tlb]                     # a section prefixes its keys: tlb.l1d
 *     l1d = 4K:16x4:plru, 2M:8x4:plru, 1G:1x4:plru
 *
 * Values: sizes take K/M/G/T suffixes (powers of 1024); booleans are on/off, true/false,
 * yes/no or 1/0; a TLB level is a comma-separated list of partitions
 * SIZES:SETSxWAYS[:POLICY] (SIZES joined by '+', e.g. 4K+2M:128x12:plru) or "none"; a
 * page-walk-cache level is ENTRIES[xWAYS] (fully associative without xWAYS) or "none".
 * Both also take the explicit ENTRIESeWAYSw (4K+2M:1536e12w = 128 sets x 12 ways).
 * Comments: a line starting with # or ;, or # / ; after whitespace following a value.
 * Lines may be 8 KiB long; NUL bytes, directories and read errors are reported.
 * vms_config_key_at lists every key with its meaning; docs/CONFIG.md is generated from it.
 *
 * Errors name the file and line (or "--set") and the key, and say what was expected:
 * unknown keys, bad values, and lines that are not `key = value`. Note for INI files: a
 * line that starts with whitespace continues the previous value (inih's multi-line
 * values), so keys are written at the start of their line.
 */
#ifndef VMSIM_CONFIG_H
#define VMSIM_CONFIG_H

#include "vmsim/kernel.h"
#include "vmsim/machine.h"
#include "vmsim/strbuf.h"

#define VMS_CONFIG_PATH_MAX 1024

/*
 * The vm.* keys: how `replay --vm`, `explain --nested` and a scenario's `vm create` build
 * a virtual machine (virt.h vms_vm_config; their command-line flags override these).
 * vm.pwc.* start as the preset's pwc.* (a later pwc.* key does not change them).
 */
typedef struct vms_config_vm {
    unsigned s2;           /* vm.s2: vms_s2_kind (virt.h); 0 auto: by the architecture */
    unsigned guest_levels; /* vm.levels: the guest's paging levels (x86-64 4|5, Arm 3|4) */
    unsigned host_levels;  /* vm.host_levels: the second stage's levels */
    unsigned host_page;    /* vm.host_page: vms_pgsize of the second-stage leaves */
    bool shadow;           /* vm.shadow: shadow paging instead of the second stage */
    bool ad;               /* vm.ept_ad: EPTP accessed/dirty flags */
    uint64_t mem;          /* vm.mem: guest-physical memory */
    uint64_t host_mem;     /* vm.host_mem: host memory a scenario's VM may back it with */
    uint32_t exit_cycles;  /* vm.cost.exit: one VM exit and re-entry */
    vms_pwc_level_config nested_tlb; /* vm.nested_tlb: GPA -> HPA (entries 0: none) */
    vms_pwc_config guest_pwc;        /* vm.pwc.*: the guest's page-walk caches */
} vms_config_vm;

typedef struct vms_config {
    vms_machine_config machine;
    vms_kernel_config kernel;
    char writeback_dir[VMS_CONFIG_PATH_MAX]; /* storage behind kernel.writeback_dir ("": the
                                                kernel's default "."; the CLI makes a
                                                temporary directory instead) */
    char swap_file[VMS_CONFIG_PATH_MAX];     /* … kernel.swap_file ("" = temporary) */
    char policy[32];                         /* … kernel.policy */
    vms_config_vm vm;                        /* the vm.* keys */
    vms_pgsize hugepagesz; /* the last hugepagesz= or default_hugepagesz= set (VMS_PG_4K:
                              none yet): which pool a following hugepages=N counts, as on
                              Linux's command line (not a setting: not in the dump) */
} vms_config;

/* One settable key, for listings and documentation. */
typedef struct vms_config_key {
    const char *name;
    const char *help; /* one line: meaning and accepted values */
} vms_config_key;

/* Start from preset `preset` (NULL: "skylake") and the kernel's defaults. */
vms_status vms_config_init(vms_config *c, const char *preset, vms_err *err);

/*
 * Set key to value. `where` names the origin for messages ("--set", "file.ini:12").
 * VMS_ERR_NOTFOUND for an unknown key (the message suggests `vmsim config --keys`),
 * VMS_ERR_INVAL for a bad value (the message lists what the key accepts). On error c
 * is unchanged.
 */
vms_status vms_config_set(vms_config *c, const char *key, const char *value, const char *where,
                          vms_err *err);

/*
 * Whether key names a host path vmsim writes (swap.file, kernel.writeback_dir,
 * kernel.writeback_in_place): such keys come only from the command line or a config file
 * the user names there, never from a scenario (vms_scenario_configure refuses them).
 */
bool vms_config_key_writes_host(const char *key);

/* Parse "key=value" (as given to --set) and set it. */
vms_status vms_config_set_arg(vms_config *c, const char *arg, vms_err *err);

/* Load an INI file, setting each key in order; stops at the first error, naming the file
 * and line. VMS_ERR_IO if the file cannot be read. */
vms_status vms_config_load(vms_config *c, const char *path, vms_err *err);

/* The same for INI text already in memory (NUL-terminated); `name` is used in messages. */
vms_status vms_config_parse(vms_config *c, const char *name, const char *text, vms_err *err);

/*
 * Append every key with its current value as a loadable INI text (no sections, full key
 * names, one per line), so that `vmsim config > f.ini` then `--config f.ini` reproduces
 * the configuration exactly.
 */
vms_status vms_config_dump(const vms_config *c, vms_strbuf *sb);

/*
 * Append the same configuration as vms_config_dump, as one JSON object: every key in
 * the dump's order, each value the string the dump prints without its trailing comment
 * ("  ; 64 entries = …") ({"ram":"4G","cores":"4",…}),
 * so that a result says exactly what made it and `--set KEY=VALUE` reproduces it.
 */
vms_status vms_config_json(const vms_config *c, vms_strbuf *sb);

/* The kernel configuration with its string fields pointing into c (c must outlive it). */
vms_kernel_config vms_config_kernel(const vms_config *c);

/*
 * Boot a machine and a kernel on it from c (with the default allocator): what the CLI,
 * the Python package and most programs do first. On success *m and *k are the caller's
 * (destroy k, then m), and c must outlive k (the kernel keeps pointers to its path
 * strings); on failure both are NULL and err says why.
 */
vms_status vms_config_boot(const vms_config *c, vms_machine **m, vms_kernel **k, vms_err *err);

/* The vm.* keys' defaults for a machine mc (vm.pwc.* = mc's page-walk caches). */
void vms_config_vm_default(vms_config_vm *v, const vms_machine_config *mc);

/* The nested TLB of v (vm.nested_tlb: ENTRIES x WAYS) as a TLB geometry: one partition
 * of every page size, ENTRIES / WAYS sets; nparts 0 when there is none. */
void vms_config_vm_tlb(const vms_config_vm *v, vms_tlb_config *out);

/* sizeof(vms_config), for bindings that allocate one without the header (Python). */
size_t vms_config_size(void);

/* The keys, for --help and docs: their number, and the i-th ({NULL, NULL} past the end). */
unsigned vms_config_nkeys(void);
/* The meaning of `design` (radix | hashed | inverted), a key outside the table: the dump
 * lists it only when it is not radix. */
extern const char vms_config_design_help[];
vms_config_key vms_config_key_at(unsigned i);

/* Does vms_config_dump (and vms_config_json) list key i for c? Every key but the
 * derived ones (preset, tlb.policy) and, unless tlb.mode = software, the software-TLB
 * keys (tlb.jtlb, tlb.wired, kernel.tlb_*), which then keep their defaults. */
bool vms_config_key_shown(const vms_config *c, unsigned i);

#endif
