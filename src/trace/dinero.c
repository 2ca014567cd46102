/*
 * dinero.c — Dinero "din" traces: one "LABEL ADDRESS" per line, both hex without a
 * required "0x", the rest of the line a comment. Labels (Dinero IV d4-7 dinfmt.c,
 * tracein_din; R. Peel's din-format notes): 0 data read, 1 data write, 2 instruction
 * fetch, 3 escape record (unknown access type), 4 escape record (cache flush).
 *
 * Labels 3 and 4 carry no memory reference a VM model can use and are skipped; any
 * other label, a short line or a non-hex digit is an error naming the line (Dinero IV
 * dies on these too). Din has no sizes: like Dinero IV (which sets size 4) every
 * reference is 4 bytes; unlike it, the address is kept as written, not aligned down.
 */
#include "trace/trace_impl.h"

#define DIN_SIZE 4u

/* Whether c is a blank (space or tab). */
static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Parse a hex number with an optional 0x; 1 ok, 0 no digits, -1 overflow. */
static int hex_field(const char **s, uint64_t *v)
{
    if ((*s)[0] == '0' && ((*s)[1] == 'x' || (*s)[1] == 'X') && vmsi_hexval((*s)[2]) >= 0)
        *s += 2;
    return vmsi_parse_hex(s, v);
}

bool vmsi_dinero_sniff(const uint8_t *p, size_t n)
{
    const char *s = (const char *)p, *e = s + n;
    uint64_t v;
    while (s < e && blank(*s))
        s++;
    if (s == e || vmsi_hexval((unsigned char)*s) < 0 || hex_field(&s, &v) <= 0 || v > 4)
        return false;
    if (s == e || !blank(*s))
        return false;
    while (s < e && blank(*s))
        s++;
    return s < e && vmsi_hexval((unsigned char)*s) >= 0;
}

/* Parse one line into ev; false with r->err set on a malformed line, or with *skip. */
static bool parse_line(vms_trace_reader *r, const char *s, vms_trace_event *ev, bool *skip)
{
    uint64_t label, va;
    while (blank(*s))
        s++;
    if (*s == '\0')
        return vmsi_fail_line(r, VMS_ERR_PARSE, "short line: expected 'LABEL ADDRESS'");
    int h = hex_field(&s, &label);
    if (h <= 0 || !blank(*s))
        return vmsi_fail_line(r, VMS_ERR_PARSE,
                              *s == '\0' && h > 0 ? "short line: expected 'LABEL ADDRESS'"
                                                  : "expected a hex label (0..4)");
    if (label > 4)
        return vmsi_fail_line(r, VMS_ERR_PARSE,
                              "label 0x%llx: expected 0 read, 1 write, 2 fetch, 3 escape or "
                              "4 flush",
                              (unsigned long long)label);
    while (blank(*s))
        s++;
    h = hex_field(&s, &va);
    if (h < 0)
        return vmsi_fail_line(r, VMS_ERR_PARSE, "address does not fit in 64 bits");
    if (h == 0 || (*s != '\0' && !blank(*s)))
        return vmsi_fail_line(r, VMS_ERR_PARSE, "expected a hex address after the label");
    *skip = label >= 3;
    static const uint8_t kinds[3] = {VMS_TACC_READ, VMS_TACC_WRITE, VMS_TACC_EXEC};
    memset(ev, 0, sizeof *ev);
    ev->type = VMS_TEV_ACCESS;
    ev->access.va = va;
    ev->access.size = DIN_SIZE;
    ev->access.kind = label < 3 ? kinds[label] : 0;
    return true;
}

static bool dinero_next(vms_trace_reader *r, vms_trace_event *ev)
{
    char *s;
    size_t n;
    bool skip = true;
    while (skip) {
        if (vmsi_next_line(r, &s, &n) <= 0 || !parse_line(r, s, ev, &skip))
            return false;
    }
    return true;
}

/* The longest line the batch parser takes: "L 0x" and 16 digits, "\r\n". */
#define FAST_LINE 24u

/*
 * vms_trace_read_refs for din: lines of exactly "L ADDR" (L 0, 1 or 2, one blank, 1..16
 * hex digits with an optional 0x, then "\n" or "\r\n") are parsed straight from the window,
 * the address 16 characters at a time without a branch per digit (vmsi_hex16). Any other line
 * — blanks elsewhere, a comment, an escape label, a longer number, a malformed line — and a last
 * line without its newline stop the run before it, for dinero_next to parse (and report) as always.
 */
static size_t dinero_refs(vms_trace_reader *r, uint32_t tid, vms_ref *refs, size_t max,
                          vmsi_ref_sums *sum)
{
    _Static_assert(VMS_TACC_READ == 0 && VMS_TACC_WRITE == 1 && VMS_TACC_EXEC == 2,
                   "din labels 0..2 are the kinds");
    vmsi_in *in = r->in;
    size_t n = 0;
    uint64_t by[3] = {0, 0, 0}; /* (locals: refs may alias *sum) */
    if (tid != 0)
        return 0;
    while (n < max) {
        if (vmsi_in_avail(in) < FAST_LINE && vmsi_in_fill(in, VMSI_WIN, &r->err) != VMS_OK)
            break;
        size_t avail = vmsi_in_avail(in);
        if (avail < FAST_LINE)
            break; /* the tail: line by line */
        const uint8_t *p0 = vmsi_in_ptr(in), *p = p0, *stop = p0 + avail - FAST_LINE;
        bool more = true;
        size_t n0 = n;
        while (n < max && p <= stop) {
            unsigned label = (unsigned)p[0] - '0';
            const uint8_t *s = p + 2;
            if (label > 2 || p[1] != ' ') {
                more = false;
                break;
            }
            if (s[0] == '0' && (s[1] | 0x20) == 'x' && vmsi_hex_digit[s[2]] >= 0)
                s += 2;
            unsigned i;
            uint64_t va = vmsi_hex16(s, &i); /* s[0, 16) are in the window */
            s += i;
            if (*s == '\r')
                s++;
            if (i == 0 || *s != '\n') {
                more = false;
                break;
            }
            vmsi_put_ref(&refs[n++], va, DIN_SIZE, label); /* kinds 0..2 are labels 0..2 */
            by[label]++;
            p = s + 1;
        }
        r->line += n - n0;
        vmsi_in_take(in, (size_t)(p - p0));
        if (!more)
            break;
    }
    sum->bytes += (uint64_t)n * DIN_SIZE;
    for (unsigned k = 0; k < 3; k++)
        sum->by_kind[k] += by[k];
    return n;
}

vms_status vmsi_dinero_start(vms_trace_reader *r)
{
    r->next = dinero_next;
    r->next_refs = dinero_refs;
    return VMS_OK;
}
