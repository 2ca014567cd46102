#!/usr/bin/env bash
# Mutation check of the many-core invalidation code: each mutant below breaks one
# invalidation form or lazy-TLB path on purpose (one exact source replacement in a copy
# of the tree), rebuilds test_smp and test_smp_arch and expects one of them to FAIL. Prints one line per mutant and
# exits non-zero if any mutant survives. Not part of `make test` (it rebuilds ~20 times);
# run it after changing src/os/smp.c, src/os/sched.c, the INVLPGB code in src/hw/cpu.c or
# the broadcast operations of src/arch/{x86_64,aarch64}/cpu.c:
#   nice scripts/mutants_smp.sh            (needs python3 for the exact replacements)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -c --exclude=./build --exclude=./.git . | tar -x -C "$work" # the working tree
cmake -S "$work" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS_RELEASE="-O1" >/dev/null
cmake --build "$work/build" --target test_smp test_smp_arch >/dev/null
"$work/build/test_smp" >/dev/null || { echo "test_smp fails unmutated"; exit 1; }
"$work/build/test_smp_arch" >/dev/null || { echo "test_smp_arch fails unmutated"; exit 1; }

survivors=0
# mutant NAME FILE OLD NEW: replace the single occurrence of OLD by NEW.
mutant() {
    local name=$1 file=$2 old=$3 new=$4
    cp "$work/$file" "$work/$file.orig"
    python3 - "$work/$file" "$old" "$new" <<'EOF' || { survivors=$((survivors + 1)); return; }
import sys
p, old, new = sys.argv[1], sys.argv[2], sys.argv[3]
s = open(p).read()
if s.count(old) != 1:
    sys.exit("mutant anchor found %d times in %s" % (s.count(old), p))
open(p, "w").write(s.replace(old, new))
EOF
    if ! cmake --build "$work/build" --target test_smp test_smp_arch >/dev/null 2>&1; then
        echo "mutant $name: does not build (fix the mutant)"
        survivors=$((survivors + 1))
    elif "$work/build/test_smp" >"$work/out" 2>&1 &&
        "$work/build/test_smp_arch" >"$work/out" 2>&1; then
        echo "mutant $name: SURVIVED"
        survivors=$((survivors + 1))
    else
        echo "mutant $name: killed ($(grep -c 'failed:' "$work/out" || true) failed checks; first: $(grep -m1 'failed' "$work/out" | sed "s|$work/||"))"
    fi
    mv "$work/$file.orig" "$work/$file"
    touch "$work/$file" # newer than the mutant's object: the next build recompiles it
}

S=src/os/smp.c
mutant lazy-return-no-catch-up $S \
    'if (was_lazy && mm && mm->cpu_gen[core] != mm->tlb_gen) {' 'if (0) {'
mutant switch-always-noflush $S \
    'vms_core_mmu_load_root(c, root, asid, stale);' \
    'vms_core_mmu_load_root(c, root, asid, false);'
mutant switch-keeps-no-mask $S \
    '        mask_set(mm, core, true);
        mm->cpu_gen[core] = mm->tlb_gen;' \
    '        mm->cpu_gen[core] = mm->tlb_gen;'
mutant lazy-never-leave-mm $S \
    'if (k->cpu[core].lazy && !freed && skip_lazy) {' 'if (k->cpu[core].lazy && skip_lazy) {'
mutant lazy-not-skipped $S \
    'if (k->cpu[core].lazy && !freed && skip_lazy) {' 'if (0) {'
mutant ipi-handler-no-flush $S \
    '                flush_on(k, mm, core, start, end, full);
                caught_up(mm, core, gen, full);' \
    '                caught_up(mm, core, gen, full);'
mutant initiator-no-local-flush $S \
    '            flush_on(k, mm, initiator, start, end, full);' ''
mutant partial-flush-settles-lag $S \
    'if (mm->cpu_gen[core] && (full || mm->cpu_gen[core] + 1 == gen))' \
    'if (mm->cpu_gen[core])'
X=src/arch/x86_64/cpu.c
mutant broadcast-one-page-short $X \
    'va, pcid, cnt - 1);' 'va, pcid, cnt > 1 ? cnt - 2 : 0);'
mutant broadcast-full-missing $X \
    '        vms_core_invlpgb(c, VMS_INVLPGB_PCID, 0, pcid, 0);' ''
mutant no-batch-ignored $S \
    'if ((flags & VMSI_FLUSH_GATHER) && !k->cfg.tlb_batch) {' 'if (0) {'
mutant defer-flush-no-remote $S \
    '        bool remote = core != initiator;' '        bool remote = core != initiator;
        if (remote)
            continue;'
mutant defer-flush-never src/os/reclaim/reclaim.c \
    '    vmsi_tlb_defer_flush(k, reclaim_core(k)); /* try_to_unmap_flush */' ''
mutant sched-idle-not-lazy src/os/sched.c \
    'cpu->lazy = k->cur_mm[core] != NULL; /* enter_lazy_tlb: keep the mm loaded */' \
    'cpu->lazy = false;'
C=src/hw/cpu.c
mutant invlpgb-issuer-only $C \
    '        bcast_apply(&m->cores[i], flags, va & ~(uint64_t)VMS_PAGE_MASK, pcid, count);' \
    '        if (i == c->id)
            bcast_apply(&m->cores[i], flags, va & ~(uint64_t)VMS_PAGE_MASK, pcid, count);'
mutant invlpgb-count-ignored $C \
    'for (unsigned i = 0; i <= count; i++, va += step) {' \
    'for (unsigned i = 0; i <= 0; i++, va += step) {'
mutant invlpgb-global-ignored $C \
    'bool global = (flags & VMS_INVLPGB_GLOBAL) != 0;' 'bool global = false;'
mutant invlpgb-any-pcid-skipped $C \
    '                tlbs_flush_va_any(c, va, global);' '                (void)tlbs_flush_va_any;'
mutant invlpgb-pcid-form-skipped $C \
    '        vmsi_core_tlbs_flush_pcid(c, pcid);
    } else {' '    } else {'
mutant invlpgb-all-form-keeps-nonglobal $C \
    '        vmsi_core_tlbs_flush_all(c, !global);' \
    '        if (global)
            vmsi_core_tlbs_flush_all(c, false);'
mutant invlpgb-stride-ignored $C \
    '(flags & VMS_INVLPGB_STRIDE_2M) ? UINT64_C(1) << 21 : VMS_PAGE_SIZE;' 'VMS_PAGE_SIZE;'
mutant tlbsync-free $C \
    '    c->cycles += w;
    return w;' '    return w;'

# AArch64 TLBI ... IS + DSB ISH, the kernel's per-architecture choice, RISC-V SBI fences.
A=src/arch/aarch64/cpu.c
mutant tlbi-vae1is-issuer-only $A \
    '        vms_core *r = &c->m->cores[i];
        r->st.invlpgb_received++;
        vmsi_core_tlbs_flush_va(r, asid, va, true);' \
    '        vms_core *r = &c->m->cores[i];
        r->st.invlpgb_received++;
        if (r == c)
            vmsi_core_tlbs_flush_va(r, asid, va, true);'
mutant tlbi-aside1is-skipped $A \
    '        vmsi_core_tlbs_flush_pcid(r, asid);
        pwc_flush_split(r, asid);' '        pwc_flush_split(r, asid);'
mutant tlbi-vmalle1is-local $A \
    '        vmsi_core_tlbs_flush_all(&c->m->cores[i], false);' \
    '        vmsi_core_tlbs_flush_all(c, false);'
mutant a64-broadcast-one-page-short $A \
    'for (uint64_t i = 0; i < npages; i++)' 'for (uint64_t i = 1; i < npages; i++)'
mutant a64-broadcast-full-missing $A \
    '        vms_core_tlbi_aside1is(c, (uint64_t)asid << 48);
        return 1;' '        return 1;'
mutant dsb-ish-free $A \
    '    uint64_t w = c->m->cfg.cost.dsb_ish + (uint64_t)c->m->cfg.cost.dsb_ish_hop * far;
    c->cycles += w;' \
    '    uint64_t w = c->m->cfg.cost.dsb_ish + (uint64_t)c->m->cfg.cost.dsb_ish_hop * far;'
mutant dsb-ish-no-hops $A \
    'c->m->cfg.cost.dsb_ish + (uint64_t)c->m->cfg.cost.dsb_ish_hop * far;' \
    'c->m->cfg.cost.dsb_ish + (uint64_t)c->m->cfg.cost.dsb_ish_hop * 0;'
mutant a64-ipis-not-broadcast $S \
    '    case ARCH_ARM64:
        return SD_BROADCAST;' '    case ARCH_ARM64:
        return SD_IPI;'
mutant a64-ceiling-x86 $S \
    '        return npages >= A64_MAX_TLBI_OPS;' '        return npages > VMSI_TLB_FLUSH_CEILING;'
mutant rv-sbi-never $S \
    '        return others ? SD_SBI : SD_IPI;' '        return SD_IPI;'
mutant rv-lazy-skipped $S \
    'bool skip_lazy = arch != ARCH_RISCV;' 'bool skip_lazy = true;'
mutant rv-sbi-ecall-not-delaying $S \
    'uint64_t send0 = sbi ? k->cfg.cost.sbi_ecall : 0;' 'uint64_t send0 = 0;'
mutant rv-sbi-handler-is-ipis $S \
    'vmsi_charge(k, core, sbi ? k->cfg.cost.sbi_rfence : k->cfg.cost.ipi);' \
    'vmsi_charge(k, core, k->cfg.cost.ipi);'
mutant rv-sbi-range-not-full $S \
    '        return npages > SBI_FLUSH_LIMIT_PAGES;' '        return npages > RV_FLUSH_ALL_PAGES;'
mutant rv-ceiling-x86 $S \
    'return npages > (arch == ARCH_RISCV ? RV_FLUSH_ALL_PAGES : VMSI_TLB_FLUSH_CEILING);' \
    'return npages > VMSI_TLB_FLUSH_CEILING;'
mutant rv-broadcast-accepted src/os/kernel.c \
    '    if (riscv)
        return vmsi_err(err, VMS_ERR_INVAL,' '    if (0)
        return vmsi_err(err, VMS_ERR_INVAL,'

echo "$survivors mutant(s) survived"
[ "$survivors" -eq 0 ]
