/*
 * scenario_impl.h — the parsed form of a scenario, shared by parse.c (text -> commands)
 * and run.c (commands -> kernel calls). Everything a command needs is resolved at parse
 * time: process and label names become indices, data literals become bytes in a pool,
 * so that running cannot fail on syntax.
 */
#ifndef VMSIM_SCENARIO_IMPL_H
#define VMSIM_SCENARIO_IMPL_H

#include "util/util.h"
#include "vmsim/config.h"
#include "vmsim/proc.h"
#include "vmsim/scenario.h"

typedef enum scn_op {
    OP_SET,
    OP_SPAWN,
    OP_FORK,
    OP_THREAD,
    OP_EXEC,
    OP_EXIT,
    OP_CORE,
    OP_AFFINITY, /* affinity NAME CORES */
    OP_MMAP,
    OP_MUNMAP,
    OP_MPROTECT,
    OP_MLOCK,
    OP_MUNLOCK,
    OP_MADVISE,
    OP_MSYNC,
    OP_BRK,
    OP_WRITE,
    OP_READ,
    OP_FETCH,
    OP_TOUCH,
    OP_SHOW,
    OP_ECHO,
    OP_IOMMU,     /* iommu on|off */
    OP_DEVICE,    /* device nic|blk|raw NAME … */
    OP_DMA_MAP,   /* dma map DEV PROC ADDR LEN … */
    OP_DMA_UNMAP, /* dma unmap DEV ADDR */
    OP_DMA_SYNC,  /* dma sync DEV ADDR LEN cpu|device */
    OP_DMA_RAW,   /* dma DEV ADDR read LEN | write DATA: the device's engine, unchecked */
    OP_NIC_POST,  /* nic post DEV ADDR */
    OP_NIC_RX,    /* nic receive DEV DATA */
    OP_BLK,       /* blk read|write DEV SECTOR COUNT ADDR */
    OP_PKEY,      /* pkey NAME alloc [noaccess|nowrite] | free KEY | mprotect ADDR LEN PROT KEY */
    OP_WRPKRU,    /* wrpkru NAME VALUE */
    OP_KREAD,     /* kread NAME ADDR LEN [nostac]: the kernel reads user memory */
    OP_KWRITE,    /* kwrite NAME ADDR DATA [nostac]: the kernel writes user memory */
    /* khugepaged [RUNS]: run khugepaged's scan now */
    OP_KHUGEPAGED,
    /* compact: compact all of RAM now (compact_memory) */
    OP_COMPACT,
    /* sysctl vm.KEY=VALUE: nr_hugepages, nr_overcommit_hugepages, compact_memory */
    OP_SYSCTL,
    OP_VM,    /* vm create NAME … | vm NAME spawn PROC [core N] | vm NAME show ept|exits (vm.c) */
    OP_MOUNT, /* mount hugetlbfs PATH [pagesize=2M|1G] */
    OP_TRUNCATE, /* truncate PATH LEN (a hugetlbfs file) */
    OP_UNLINK,   /* unlink PATH (a hugetlbfs file) */
} scn_op;

typedef enum scn_expect {
    EXP_NONE = 0,
    EXP_OK,      /* the access or call succeeds */
    EXP_SEGV,    /* the access kills the process with SIGSEGV */
    EXP_DATA,    /* a read returns exactly these bytes */
    EXP_ERROR,   /* the system call fails */
    EXP_BLOCKED, /* a device's DMA is blocked (or its packet dropped) */
} scn_expect;

typedef enum scn_show {
    SHOW_MAPS,
    SHOW_SMAPS,
    SHOW_PAGEMAP,
    SHOW_WALK,
    SHOW_TLB,
    SHOW_MEMINFO,
    SHOW_VMSTAT,
    SHOW_STATS,
    SHOW_PROCS,
    SHOW_IOMMU,
    SHOW_DMESG,
    SHOW_SCHED,
    SHOW_KHUGEPAGED,
    SHOW_BUDDYINFO,
    SHOW_HUGEPAGES,
    SHOW_PAGETYPEINFO,
} scn_show;

/* An address operand: absolute, `auto`, or label + offset. */
typedef struct scn_addr {
    bool is_auto;
    int label;      /* -1: absolute */
    uint64_t value; /* the address, or the offset from the label */
} scn_addr;

typedef struct scn_cmd {
    unsigned line;
    scn_op op;
    unsigned def;    /* its command: the row of vmsi_scn_commands */
    int proc, proc2; /* process-name indices (-1: none) */
    scn_addr addr;
    uint64_t len;
    unsigned prot, flags; /* mmap flags (VMS_MAP_*) */
    int path;             /* string index: file path / shm name / echo text / set arg */
    bool shm;
    int def_label; /* label an mmap defines (-1: none) */
    scn_expect expect;
    size_t data_off, data_len; /* write data / expected read data in the byte pool */
    unsigned core;             /* spawn/thread/core: a core; show tlb: a core */
    int tlb_level;             /* show tlb: 0 l1i, 1 l1d, 2 l2, -1 all */
    vms_access_kind kind;      /* touch */
    uint64_t step, count;      /* touch: stride; count of random accesses (0: sequential) */
    scn_show show;
    int dev;          /* device-name index (-1: none) */
    unsigned devkind; /* device: 0 nic, 1 blk, 2 raw */
    unsigned devmode; /* device: 0 iommu (translate), 1 passthrough, 2 noiommu */
    unsigned dir;     /* dma map: vms_dma_dir */
    bool flag;        /* iommu on; blk write; dma write; device writable; dma sync cpu */
    bool noncoherent; /* device: its DMA does not snoop the caches */
    bool posted;      /* device … vm VM posted: posted interrupts */
    int vm;           /* vm: the VM-name index; device: the VM it is assigned to (-1: none) */
    struct scn_vmopt {
        unsigned sub;       /* 0 create, 1 spawn, 2 show ept, 3 show exits, 4 vcpu, 5 hostswap */
        unsigned given;     /* create: which of the options below the line gave (bit per word) */
        uint64_t mem, host; /* guest-physical memory, host memory reserved */
        unsigned s2, levels, host_levels, host_page, nested_tlb;
        bool shadow;
        unsigned guest;      /* 0 the default, 1 pager (virt.h's minimal one), 2 kernel */
        unsigned vcpus;      /* the kernel guest's vCPUs (0: 1) */
        unsigned vcpu;       /* vcpu: the vCPU that moves (to host core `core`) */
        uint64_t host_limit; /* create: host memory the VM may hold (0: no limit) */
    } vmo;
} scn_cmd;

/* Parse a core list "0-3,8" or "all" into mask (VMS_MAX_CORES bits); false if malformed
 * or a core is >= VMS_MAX_CORES. */
bool vmsi_scn_cores(const char *s, size_t len, uint64_t mask[VMS_MAX_CORES / 64]);

struct vms_scenario {
    const vms_allocator *alloc;
    char *name; /* for messages */
    char *dir;  /* directory of the scenario file, for relative paths */
    scn_cmd *cmd;
    size_t ncmd, cmd_cap;
    char **names; /* process names */
    size_t nnames, names_cap;
    char **labels;
    size_t nlabels, labels_cap;
    char **devs; /* device names (defined by `device`, never removed) */
    size_t ndevs, devs_cap;
    unsigned *devkinds; /* per device: its kind (as scn_cmd.devkind) */
    size_t devkinds_cap;
    char **strs; /* paths, echo texts, set arguments */
    size_t nstrs, strs_cap;
    uint8_t *pool; /* data bytes */
    size_t pool_len, pool_cap;
    /* Host files the caller lets `device blk … writable` write (vms_scenario_allow_write),
     * by device and inode. */
    struct scn_wfile {
        unsigned long long dev, ino;
    } wfiles[16];
    unsigned nwfiles;
    char **vmnames; /* VM names (defined by `vm create`, never removed) */
    size_t nvmnames, vmnames_cap;
    bool vmdef_set; /* vmdef from vms_scenario_set_vm_config (else the built-in defaults) */
    vms_config_vm vmdef;
};

/*
 * The commands of the language, one row each (commands.c): the first word, the op its
 * parser starts from (dma and nic refine it to a sub-command), the parser (parse.c: the
 * rest of the line into c, or a "file:line: expected …" error), the runner (run.c: the
 * kernel calls and their narration; t is the command's running task when needs_task,
 * else NULL), and the usage line that syntax errors quote. The list of commands in the
 * "expected a command (…)" error is the names in table order.
 */
typedef struct scn_tok scn_tok;       /* a token of a line (parse.c) */
typedef struct scn_parser scn_parser; /* parse state (parse.c) */
typedef struct scn_runner scn_runner; /* run state (run.c) */

typedef struct scn_def {
    const char *name;
    scn_op op;
    vms_status (*parse)(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
    vms_status (*run)(scn_runner *r, vms_task *t);
    const char *usage;
    bool needs_task; /* the command acts as a process: a dead one is reported, not run */
} scn_def;

extern const scn_def vmsi_scn_commands[];
extern const size_t vmsi_scn_ncommands;

/* Parsers (parse.c): t[0 … n) are the line's tokens, t[0] the command's name. */
vms_status vmsi_scn_parse_set_echo(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
vms_status vmsi_scn_parse_procs(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
vms_status vmsi_scn_parse_mmap(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
vms_status vmsi_scn_parse_range(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
vms_status vmsi_scn_parse_access(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
vms_status vmsi_scn_parse_touch(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
vms_status vmsi_scn_parse_show(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
vms_status vmsi_scn_parse_iommu(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
vms_status vmsi_scn_parse_device(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
vms_status vmsi_scn_parse_dma(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
vms_status vmsi_scn_parse_nic(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
vms_status vmsi_scn_parse_blk(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
vms_status vmsi_scn_parse_pkey(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
vms_status vmsi_scn_parse_kaccess(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
vms_status vmsi_scn_parse_daemon(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
vms_status vmsi_scn_parse_vm(scn_parser *p, scn_tok *t, int n, scn_cmd *c);
vms_status vmsi_scn_parse_hugetlbfs(scn_parser *p, scn_tok *t, int n, scn_cmd *c);

/* Runners (run.c): VMS_OK unless the run must stop (host memory, a panic); a failed
 * system call or expectation is narrated and counted, not returned. */
vms_status vmsi_scn_run_set(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_echo(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_procs(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_mmap(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_range(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_brk(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_access(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_touch(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_show(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_iommu(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_device(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_dma(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_nic(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_blk(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_pkey(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_kaccess(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_daemon(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_vm(scn_runner *r, vms_task *t);
vms_status vmsi_scn_run_hugetlbfs(scn_runner *r, vms_task *t);

/*
 * Virtual machines in a scenario (vm.c). run.c keeps one scn_vms per run and hands each
 * `vm` command, and each command naming a guest process, to vm.c with what it needs;
 * vm.c narrates into line and puts a failure's message in err (run.c reports it).
 */
typedef struct scn_vms scn_vms;
typedef struct scn_vmctx {
    const vms_scenario *sc;
    const scn_cmd *c;
    vms_kernel *k;
    vms_machine *m;
    uint64_t va;            /* the command's address, labels resolved */
    vms_strbuf *line, *err; /* narration; a failure's message (empty: none) */
    bool *expect_failed;    /* set with err: the failure is an expectation's (counted there) */
    vms_task **task;        /* per process name: its task (a kernel guest's spawn sets one) */
    vms_scenario_result *res;
} scn_vmctx;

vms_status vmsi_scn_vm_cmd(scn_vms **vms, const scn_vmctx *x);
/* Is process-name index proc a guest process (spawned with `vm NAME spawn`)? */
bool vmsi_scn_vm_owns(const scn_vms *vms, int proc);
/* Run command x->c on its guest process (a VM with the minimal guest). */
vms_status vmsi_scn_vm_guest(scn_vms *vms, const scn_vmctx *x);
/* The guest kernel whose process proc is (the kernel model in a VM: the command runs
 * through the ordinary runners on it), or NULL when its VM runs the minimal guest. */
vms_kernel *vmsi_scn_vm_kernel(const scn_vms *vms, int proc);
/* Before / after an ordinary command c ran on a kernel guest's process: what it may not do
 * there (an error message in err, then it does not run), and the bookkeeping after (a
 * fork's child or a new thread is the VM's too, an exit ends the process's tie to it) with
 * the VM exits it caused appended to line. */
void vmsi_scn_vm_check(const scn_vms *vms, const scn_cmd *c, vms_strbuf *err);
/* vm is the VM's index (vmsi_scn_vm_of, or the VM a device is assigned to). */
void vmsi_scn_vm_after(scn_vms *vms, const scn_cmd *c, vms_task **task, int vm, uint64_t exits0,
                       vms_strbuf *line);
uint64_t vmsi_scn_vm_exits(const scn_vms *vms, int vm);
/* The host core VM vm's CPU cpu runs on now (its vCPU's; cpu itself for the pager). */
unsigned vmsi_scn_vm_host_core(const scn_vms *vms, int vm, unsigned cpu);
/* The VM index of process proc (-1: a host process), and a kernel guest's kernel by VM
 * index (NULL: not created, or the minimal guest). */
int vmsi_scn_vm_of(const scn_vms *vms, int proc);
vms_kernel *vmsi_scn_vm_kernel_at(const scn_vms *vms, int vm);
/*
 * device … vm VM: give dev to VM vm (virt.h vms_guest_assign_device, in the VM's IOMMU
 * domain, taken from the host kernel hk's IOMMU driver on its first device) and return
 * the guest kernel that is to attach it; NULL with err when it cannot be assigned.
 */
vms_kernel *vmsi_scn_vm_assign(scn_vms *vms, vms_kernel *hk, int vm, struct vms_dev *dev,
                               bool posted, vms_err *err);
/* The VM's interrupt counters (exits, injections, postings), for a device line's narration. */
void vmsi_scn_vm_irqs(const scn_vms *vms, int vm, uint64_t out[3]);
/* show walk on guest process t of VM vm: its 2D walk of va narrated (explain --nested's
 * words, virt.h vms_nested_trace_str) into line. */
void vmsi_scn_vm_show_walk(scn_vms *vms, int vm, vms_task *t, const char *proc, uint64_t va,
                           vms_strbuf *line);
void vmsi_scn_vm_free(scn_vms *vms, const vms_allocator *a);

/* The host path of a scenario's file argument: absolute, or relative to its directory. */
void vmsi_scenario_path(const vms_scenario *sc, const char *arg, char *buf, size_t len);

/* Whether the caller allowed the scenario to write host file `path` (same inode). */
bool vmsi_scenario_may_write(const vms_scenario *sc, const char *path);

#endif
