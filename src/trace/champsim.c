/*
 * champsim.c — ChampSim binary traces: a sequence of 64-byte `input_instr` records
 * (ChampSim/ChampSim inc/trace_instruction.h, commit b92dc114), little-endian, as the
 * ChampSim PIN tracer writes them; usually xz- or gzip-compressed (.champsimtrace.xz).
 *
 *  byte  0        8    9    10     12          16                  32                  64
 *        ┌────────┬────┬────┬──────┬───────────┬───────────────────┬───────────────────┐
 *        │ ip u64 │ br │ tk │ dreg │ sreg[4]   │ destination_memory│ source_memory     │
 *        │        │    │    │ [2]  │           │ [2] u64           │ [4] u64           │
 *        └────────┴────┴────┴──────┴───────────┴───────────────────┴───────────────────┘
 *        br = is_branch, tk = branch_taken (both ignored here); registers ignored.
 *
 * Each record yields, in order: an instruction fetch at ip, a read per non-zero
 * source_memory slot, a write per non-zero destination_memory slot (0 means an unused
 * slot). The records carry no sizes: a reference is taken as 8 bytes, cut short so it
 * stays inside its 64-byte cache line — ChampSim itself models each memory operand as
 * one cache-line access, so a trace never makes vmsim touch a page ChampSim would not.
 * The fetch is sized the same way. tid is 0 (single-threaded traces). A file whose
 * length is not a multiple of 64 ends with an error naming the offset of the
 * truncated record.
 */
#include "trace/trace_impl.h"

#define REC      64u
#define REF_SIZE 8u
#define LINE     64u

/* Mirror of ChampSim's input_instr, for the layout assertion only (we decode bytes). */
struct champsim_rec {
    uint64_t ip;
    uint8_t is_branch, branch_taken;
    uint8_t destination_registers[2];
    uint8_t source_registers[4];
    uint64_t destination_memory[2];
    uint64_t source_memory[4];
};
_Static_assert(sizeof(struct champsim_rec) == REC, "ChampSim input_instr is 64 bytes");
_Static_assert(offsetof(struct champsim_rec, destination_memory) == 16, "dst at 16");
_Static_assert(offsetof(struct champsim_rec, source_memory) == 32, "src at 32");

/* A little-endian u64 at p. */
static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Queue one reference of kind at va. */
static void push(vms_trace_reader *r, uint64_t va, unsigned kind)
{
    vms_trace_event *ev = &r->pend[r->npend++];
    uint64_t room = LINE - (va & (LINE - 1));
    memset(ev, 0, sizeof *ev);
    ev->type = VMS_TEV_ACCESS;
    ev->access.va = va;
    ev->access.size = (uint32_t)(room < REF_SIZE ? room : REF_SIZE);
    ev->access.kind = (uint8_t)kind;
}

/* Decode the record at p into r->pend. */
static void decode(vms_trace_reader *r, const uint8_t *p)
{
    r->npend = r->ipend = 0;
    push(r, le64(p), VMS_TACC_EXEC);
    for (unsigned i = 0; i < 4; i++) {
        uint64_t va = le64(p + 32 + 8 * i);
        if (va)
            push(r, va, VMS_TACC_READ);
    }
    for (unsigned i = 0; i < 2; i++) {
        uint64_t va = le64(p + 16 + 8 * i);
        if (va)
            push(r, va, VMS_TACC_WRITE);
    }
}

static bool champsim_next(vms_trace_reader *r, vms_trace_event *ev)
{
    if (r->ipend == r->npend) {
        if (vmsi_in_fill(r->in, REC, &r->err) != VMS_OK)
            return false;
        size_t n = vmsi_in_avail(r->in);
        if (n == 0)
            return false;
        if (n < REC)
            return vmsi_fail_byte(r, vmsi_in_offset(r->in), VMS_ERR_PARSE,
                                  "truncated ChampSim record: expected 64 bytes, got %zu", n);
        decode(r, vmsi_in_ptr(r->in));
        vmsi_in_take(r->in, REC);
    }
    *ev = r->pend[r->ipend++];
    return true;
}

/* Whether va is 0 (an unused slot) or a canonical 48-bit x86-64 address. */
static bool plausible_va(uint64_t va)
{
    uint64_t top = va >> 47;
    return top == 0 || top == (UINT64_C(1) << 17) - 1;
}

/* Whether the record at p could come from ChampSim's tracer: a non-zero, canonical ip,
 * branch flags 0 or 1 (taken only for a branch), every memory slot 0 or canonical.
 * Random bytes pass with a probability below 2^-60 per record. */
static bool plausible(const uint8_t *p)
{
    if (!le64(p) || !plausible_va(le64(p)) || p[8] > 1 || p[9] > p[8])
        return false;
    for (unsigned i = 0; i < 6; i++)
        if (!plausible_va(le64(p + 16 + 8 * i)))
            return false;
    return true;
}

bool vmsi_champsim_sniff(const uint8_t *p, size_t n)
{
    if (n < REC)
        return false;
    for (size_t off = 0; off + REC <= n && off < 4 * REC; off += REC)
        if (!plausible(p + off))
            return false;
    return true;
}

vms_status vmsi_champsim_start(vms_trace_reader *r)
{
    r->next = champsim_next;
    return VMS_OK;
}
