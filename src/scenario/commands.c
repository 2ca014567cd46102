/*
 * commands.c — the scenario language's commands, one row each (scenario_impl.h: scn_def):
 * adding a command is its parser in parse.c, its runner in run.c and one line here. The
 * rows are in the order the "unknown command" error lists them; docs/SCENARIO.md
 * tells each command's meaning.
 */
#include "scenario/scenario_impl.h"

#define P(name) vmsi_scn_parse_##name
#define R(name) vmsi_scn_run_##name

const scn_def vmsi_scn_commands[] = {
    /* name, first op, parse, run, usage, needs_task */
    {"spawn", OP_SPAWN, P(procs), R(procs), "spawn NAME [core N]", false},
    {"mmap", OP_MMAP, P(mmap), R(mmap),
     "mmap NAME ADDR LEN PROT [anon|file=PATH|shm=KEY] [private|shared]", true},
    {"munmap", OP_MUNMAP, P(range), R(range), "munmap NAME ADDR LEN", true},
    {"mprotect", OP_MPROTECT, P(range), R(range), "mprotect NAME ADDR LEN PROT", true},
    {"write", OP_WRITE, P(access), R(access), "write NAME ADDR DATA [expect segv]", true},
    {"read", OP_READ, P(access), R(access), "read NAME ADDR LEN [expect DATA | expect segv]", true},
    {"fork", OP_FORK, P(procs), R(procs), "fork PARENT CHILD", false},
    {"exit", OP_EXIT, P(procs), R(procs), "exit NAME", false},
    {"thread", OP_THREAD, P(procs), R(procs), "thread PROC NAME [core N]", false},
    {"exec", OP_EXEC, P(procs), R(procs), "exec NAME [ELF-FILE [as LABEL]]", false},
    {"core", OP_CORE, P(procs), R(procs), "core NAME N", false},
    {"affinity", OP_AFFINITY, P(procs), R(procs), "affinity NAME CORES", false},
    {"mlock", OP_MLOCK, P(range), R(range), "mlock NAME ADDR LEN", true},
    {"munlock", OP_MUNLOCK, P(range), R(range), "munlock NAME ADDR LEN", true},
    {"madvise", OP_MADVISE, P(range), R(range),
     "madvise NAME ADDR LEN dontneed|hugepage|nohugepage", true},
    {"msync", OP_MSYNC, P(range), R(range), "msync NAME ADDR LEN", true},
    {"brk", OP_BRK, P(procs), R(brk), "brk NAME ADDR", true},
    {"fetch", OP_FETCH, P(access), R(access), "fetch NAME ADDR [expect segv]", true},
    {"touch", OP_TOUCH, P(touch), R(touch),
     "touch NAME ADDR LEN [read|write|exec] [step=N] [random=COUNT]", true},
    {"show", OP_SHOW, P(show), R(show),
     "show maps|smaps|pagemap|walk|tlb|meminfo|vmstat|stats|procs|iommu|dmesg|sched|khugepaged|"
     "buddyinfo|hugepages|pagetypeinfo",
     false},
    {"echo", OP_ECHO, P(set_echo), R(echo), "echo \"text\"", false},
    {"set", OP_SET, P(set_echo), R(set), "set KEY=VALUE", false},
    {"iommu", OP_IOMMU, P(iommu), R(iommu), "iommu on|off", false},
    {"device", OP_DEVICE, P(device), R(device),
     "device nic|raw NAME [iommu|passthrough|noiommu|vm VM [posted]] | device blk NAME FILE "
     "[iommu|passthrough|noiommu|vm VM [posted]] [writable]",
     false},
    {"dma", OP_DMA_RAW, P(dma), R(dma),
     "dma map DEV PROC ADDR LEN [read|write|rw] [as LABEL] | dma unmap DEV ADDR | dma sync DEV "
     "ADDR LEN cpu|device | dma DEV ADDR read LEN | dma DEV ADDR write DATA",
     false},
    {"nic", OP_NIC_POST, P(nic), R(nic), "nic post DEV ADDR | nic receive DEV DATA", false},
    {"blk", OP_BLK, P(blk), R(blk), "blk read|write DEV SECTOR COUNT ADDR", false},
    {"pkey", OP_PKEY, P(pkey), R(pkey),
     "pkey NAME alloc [noaccess|nowrite] | pkey NAME free KEY | pkey NAME mprotect ADDR LEN "
     "PROT KEY",
     true},
    {"wrpkru", OP_WRPKRU, P(pkey), R(pkey), "wrpkru NAME VALUE", true},
    {"kread", OP_KREAD, P(kaccess), R(kaccess), "kread NAME ADDR LEN [nostac] [expect ok|error]",
     true},
    {"kwrite", OP_KWRITE, P(kaccess), R(kaccess),
     "kwrite NAME ADDR DATA [nostac] [expect ok|error]", true},
    {"khugepaged", OP_KHUGEPAGED, P(daemon), R(daemon), "khugepaged [RUNS]", false},
    {"compact", OP_COMPACT, P(daemon), R(daemon), "compact", false},
    {"sysctl", OP_SYSCTL, P(daemon), R(daemon),
     "sysctl vm.nr_hugepages=N|vm.nr_overcommit_hugepages=N|vm.compact_memory=1|"
     "/sys/kernel/mm/hugepages/hugepages-2048kB|1048576kB/nr_hugepages|nr_overcommit_hugepages=N",
     false},
    {"mount", OP_MOUNT, P(hugetlbfs), R(hugetlbfs), "mount hugetlbfs PATH [pagesize=2M|1G]", false},
    {"truncate", OP_TRUNCATE, P(hugetlbfs), R(hugetlbfs), "truncate PATH LEN", false},
    {"unlink", OP_UNLINK, P(hugetlbfs), R(hugetlbfs), "unlink PATH", false},
    {"vm", OP_VM, P(vm), R(vm),
     "vm create NAME [mem SIZE] [host SIZE] [host-limit SIZE] [s2 ept|npt|arm] [host-page "
     "4K|2M|1G] [levels N] [host-levels N] [nested-tlb N] [shadow] [guest kernel|pager] [vcpus "
     "N] | vm NAME spawn PROC [core N] | vm NAME show ept|npt|exits | vm NAME vcpu N core C | "
     "vm NAME hostswap N",
     false},
};

const size_t vmsi_scn_ncommands = sizeof vmsi_scn_commands / sizeof vmsi_scn_commands[0];

const char *vms_scenario_command_usage(size_t i)
{
    return i < vmsi_scn_ncommands ? vmsi_scn_commands[i].usage : NULL;
}
