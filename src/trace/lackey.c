/*
 * lackey.c — valgrind lackey memory traces (valgrind --tool=lackey --trace-mem=yes).
 *
 * Lackey prints one reference per line (valgrind lackey/lk_main.c, printf formats
 * "I  %08lx,%lu", " L %08lx,%lu", " S %08lx,%lu", " M %08lx,%lu"): a hex address without
 * "0x" and a decimal size. I is an instruction fetch, L a load, S a store, M a modify
 * (load then store of the same bytes). Valgrind's own messages ("==PID== …") and
 * comment lines ("#…") are skipped; any other line is an error naming its number —
 * never a silent skip, since a skipped reference changes every result after it.
 * Lackey records one process with threads serialised and no thread id: tid is 0.
 */
#include "trace/trace_impl.h"

/* The access kind of a data line's letter, or -1. */
static int data_kind(char c)
{
    switch (c) {
    case 'L':
        return VMS_TACC_READ;
    case 'S':
        return VMS_TACC_WRITE;
    case 'M':
        return VMS_TACC_MODIFY;
    default:
        return -1;
    }
}

/* The kind a line's 3-character prefix announces, -1 for none, -2 for a skipped line. */
static int line_kind(const char *s, size_t n)
{
    if ((n >= 2 && s[0] == '=' && s[1] == '=') || (n >= 1 && s[0] == '#'))
        return -2;
    if (n < 3)
        return -1;
    if (s[0] == 'I' && s[1] == ' ' && s[2] == ' ')
        return VMS_TACC_EXEC;
    if (s[0] == ' ' && s[2] == ' ')
        return data_kind(s[1]);
    return -1;
}

bool vmsi_lackey_sniff(const uint8_t *p, size_t n)
{
    return line_kind((const char *)p, n) != -1;
}

/* Parse "ADDR,SIZE" at s into ev (a NUL-terminated line). */
static bool parse_ref(vms_trace_reader *r, const char *s, vms_trace_event *ev)
{
    uint64_t va, size = 0;
    int h = vmsi_parse_hex(&s, &va);
    if (h < 0)
        return vmsi_fail_line(r, VMS_ERR_PARSE, "address does not fit in 64 bits");
    if (h == 0 || *s != ',')
        return false;
    s++;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        size = size * 10 + (uint64_t)(*s - '0');
        if (size > UINT32_MAX)
            return vmsi_fail_line(r, VMS_ERR_PARSE, "size above 4294967295");
    }
    if (*s != '\0')
        return false;
    if (size == 0)
        return vmsi_fail_line(r, VMS_ERR_PARSE, "size 0: expected a size of at least 1");
    ev->access.va = va;
    ev->access.size = (uint32_t)size;
    return true;
}

static bool lackey_next(vms_trace_reader *r, vms_trace_event *ev)
{
    char *s;
    size_t n;
    int kind;
    do {
        if (vmsi_next_line(r, &s, &n) <= 0)
            return false;
        kind = line_kind(s, n);
    } while (kind == -2);
    memset(ev, 0, sizeof *ev);
    if (kind >= 0 && parse_ref(r, s + 3, ev)) {
        ev->type = VMS_TEV_ACCESS;
        ev->access.kind = (uint8_t)kind;
        return true;
    }
    if (r->err.status != VMS_OK)
        return false;
    char q[96];
    vmsi_quote(s, n, q);
    return vmsi_fail_line(r, VMS_ERR_PARSE,
                          "expected 'I  ADDR,SIZE' or ' L|S|M ADDR,SIZE' (hex address, "
                          "decimal size), got '%s'",
                          q);
}

/* The longest line the batch parser takes: "I  ", 16 digits, ",", 10 digits, "\r\n". */
#define FAST_LINE 32u

/*
 * vms_trace_read_refs for lackey: lines "I  ADDR,SIZE", " L ADDR,SIZE" and " S ADDR,SIZE"
 * (1..16 hex digits, 1..10 decimal digits of a size 1..2^32-1, then "\n" or "\r\n") are
 * parsed straight from the window (the address without a branch per digit:
 * vmsi_swar_hex16). Anything else — a modify, a Valgrind message, a
 * comment, a malformed line, a last line without its newline — stops the run before it,
 * for lackey_next to parse (and report) as always.
 */
static size_t lackey_refs(vms_trace_reader *r, uint32_t tid, vms_ref *refs, size_t max,
                          vmsi_ref_sums *sum)
{
    vmsi_in *in = r->in;
    size_t n = 0;
    uint64_t bytes = 0, by[3] = {0, 0, 0}; /* (locals: refs may alias *sum) */
    if (tid != 0)
        return 0;
    while (n < max) {
        if (!vmsi_text_batch_fill(r, FAST_LINE))
            break; /* the tail (line by line), or a refill that failed */
        size_t avail = vmsi_in_avail(in);
        const uint8_t *p0 = vmsi_in_ptr(in), *p = p0, *stop = p0 + avail - FAST_LINE;
        bool more = true;
        size_t n0 = n;
        while (n < max && p <= stop) {
            unsigned kind;
            if (p[0] == 'I' && p[1] == ' ')
                kind = VMS_TACC_EXEC;
            else if (p[0] == ' ' && p[1] == 'L')
                kind = VMS_TACC_READ;
            else if (p[0] == ' ' && p[1] == 'S')
                kind = VMS_TACC_WRITE;
            else
                kind = 4;
            const uint8_t *s = p + 3;
            if (kind > 2 || p[2] != ' ') {
                more = false;
                break;
            }
            uint64_t size = 0;
            unsigned i, j = 0;
            uint64_t va = vmsi_swar_hex16(s, &i); /* s[0, 16) are in the window */
            s += i;
            if (i == 0 || *s++ != ',') {
                more = false;
                break;
            }
            while (j < 10 && (unsigned)(s[j] - '0') < 10) {
                size = size * 10 + (uint64_t)(s[j] - '0');
                j++;
            }
            s += j;
            if (*s == '\r')
                s++;
            if (j == 0 || *s != '\n' || size == 0 || size > UINT32_MAX) {
                more = false;
                break;
            }
            vmsi_put_ref(&refs[n++], va, (uint32_t)size, kind);
            bytes += size;
            by[kind]++;
            p = s + 1;
        }
        r->line += n - n0;
        vmsi_in_take(in, (size_t)(p - p0));
        if (!more)
            break;
    }
    sum->bytes += bytes;
    for (unsigned k = 0; k < 3; k++)
        sum->by_kind[k] += by[k];
    return n;
}

vms_status vmsi_lackey_start(vms_trace_reader *r)
{
    r->next = lackey_next;
    r->next_refs = lackey_refs;
    return VMS_OK;
}
