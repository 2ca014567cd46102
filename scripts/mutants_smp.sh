#!/usr/bin/env bash
# Mutation check of the many-core invalidation code: each mutant below breaks one
# invalidation form or lazy-TLB path on purpose (one exact source replacement in a copy
# of the tree), rebuilds test_smp and expects it to FAIL. Prints one line per mutant and
# exits non-zero if any mutant survives. Not part of `make test` (it rebuilds ~20 times);
# run it after changing src/os/smp.c, src/os/sched.c or the INVLPGB code in src/hw/cpu.c:
#   nice scripts/mutants_smp.sh            (needs python3 for the exact replacements)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -c --exclude=./build --exclude=./.git . | tar -x -C "$work" # the working tree
cmake -S "$work" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS_RELEASE="-O1" >/dev/null
cmake --build "$work/build" --target test_smp >/dev/null
"$work/build/test_smp" >/dev/null || { echo "test_smp fails unmutated"; exit 1; }

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
    if ! cmake --build "$work/build" --target test_smp >/dev/null 2>&1; then
        echo "mutant $name: does not build (fix the mutant)"
        survivors=$((survivors + 1))
    elif "$work/build/test_smp" >"$work/out" 2>&1; then
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
    'if (k->cpu[core].lazy && !freed) {' 'if (k->cpu[core].lazy) {'
mutant lazy-not-skipped $S \
    'if (k->cpu[core].lazy && !freed) {' 'if (0) {'
mutant ipi-handler-no-flush $S \
    '                flush_on(k, mm, core, start, end, full);
                caught_up(mm, core, gen, full);' \
    '                caught_up(mm, core, gen, full);'
mutant initiator-no-local-flush $S \
    '            flush_on(k, mm, initiator, start, end, full);' ''
mutant partial-flush-settles-lag $S \
    'if (mm->cpu_gen[core] && (full || mm->cpu_gen[core] + 1 == gen))' \
    'if (mm->cpu_gen[core])'
mutant broadcast-one-page-short $S \
    'va, mm->pcid, cnt - 1);' 'va, mm->pcid, cnt > 1 ? cnt - 2 : 0);'
mutant broadcast-full-missing $S \
    '        vms_core_invlpgb(c, VMS_INVLPGB_PCID, 0, mm->pcid, 0);' ''
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

echo "$survivors mutant(s) survived"
[ "$survivors" -eq 0 ]
