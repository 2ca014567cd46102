/*
 * parse.c — scenario text to commands. The whole text is parsed before anything runs,
 * so a syntax error stops the run up front with "file:line: expected …, got '…'".
 * Process and label names are resolved here (each must be defined by an earlier line),
 * data literals are decoded into a byte pool, and every number is range checked.
 */
#define _POSIX_C_SOURCE 200809L /* stat */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "scenario/scenario_impl.h"
#include "vmsim/mman.h"

#define MAX_TOKENS             24
#define MAX_LINE               8192
#define VMS_NIC_MAX_PACKET_SCN 16384u /* dev.h's VMS_NIC_MAX_PACKET */

/* How much of a token and of the file's name an error message shows: enough that the
 * longest message (file, line, what was expected, two tokens) fits in vms_err.msg. */
#define TOK_SHOWN  32
#define NAME_SHOWN 60

struct scn_tok {
    char *s;
    size_t len;
    bool quoted;
};
typedef scn_tok tok;

struct scn_parser {
    vms_scenario *sc;
    unsigned line;
    vms_err *err;
    bool *alive; /* per process name: defined and not exited, as far as parsing can tell */
    size_t alive_cap;
    bool seen_command;            /* a non-`set` command was seen (set lines must come first) */
    char shown[4][TOK_SHOWN + 4]; /* tokens as error messages show them (str) */
    unsigned nshown;
};
typedef scn_parser parser;

/* Copy at most `room` bytes of s[0..n) to out with control bytes escaped (\x01), cut on
 * a UTF-8 character boundary; returns the bytes of s shown (out is NUL-terminated). */
static size_t shown(const char *s, size_t n, char *out, size_t room)
{
    size_t o = 0, i = 0;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ctl = (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f;
        if (o + (ctl ? 4 : 1) > room)
            break;
        if (ctl)
            o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    while (i < n && i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) { /* a cut character */
        i--;
        o--;
    }
    out[o] = '\0';
    return i;
}

/* Report a syntax error at the current line. Always returns VMS_ERR_PARSE. The message
 * always fits: a long file name is shown by its last NAME_SHOWN bytes, tokens (str) by
 * their first TOK_SHOWN, each with "…" where it was cut. */
__attribute__((format(printf, 2, 3))) static vms_status fail(parser *p, const char *fmt, ...)
{
    char msg[256], safe[256], name[NAME_SHOWN + 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vmsi_escape_ctl(msg, safe, sizeof safe); /* tokens from the file reach a terminal */
    const char *n = p->sc->name;
    size_t len = strlen(n), from = len > NAME_SHOWN ? len - NAME_SHOWN + 3 : 0;
    while (from < len && ((unsigned char)n[from] & 0xC0) == 0x80)
        from++;
    size_t o = 0;
    if (from) {
        memcpy(name, "…", 3);
        o = 3;
    }
    shown(n + from, len - from, name + o, NAME_SHOWN - o);
    return vmsi_err(p->err, VMS_ERR_PARSE, "%s:%u: %s", name, p->line, safe);
}

static char *dup_n(const vms_allocator *a, const char *s, size_t n)
{
    char *d = vmsi_alloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Index of name in list, or -1. */
static int lookup(char **list, size_t n, const tok *t)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == t->len && !memcmp(list[i], t->s, t->len))
            return (int)i;
    return -1;
}

/* Append a copy of t to a string list; returns its index or -1 on host failure. */
static int add_str(parser *p, char ***list, size_t *n, size_t *cap, const char *s, size_t len)
{
    const vms_allocator *a = p->sc->alloc;
    char *d = dup_n(a, s, len);
    if (!d || !vmsi_grow(a, (void **)list, cap, *n, sizeof **list)) {
        vmsi_free(a, d, len + 1);
        return -1;
    }
    (*list)[*n] = d;
    return (int)(*n)++;
}

static bool tok_is(const tok *t, const char *word)
{
    return !t->quoted && strlen(word) == t->len && !memcmp(t->s, word, t->len);
}

/* A token as a C string for messages (tokens are NUL-terminated in the line buffer). */
/* Token t as an error message shows it (see fail): valid until the fourth next call. */
static const char *str(parser *p, const tok *t)
{
    char *out = p->shown[p->nshown++ % 4];
    if (shown(t->s, t->len, out, TOK_SHOWN) < t->len)
        strcat(out, "…");
    return out;
}

/* ---- tokenizer ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode a quoted string in place (from just after the opening quote); sets *end past the
 * closing quote. Returns the decoded length, or -1 with a message in *why. */
static long decode_quoted(char *s, char **end, const char **why)
{
    char *out = s, *in = s;
    while (*in && *in != '"') {
        if (*in != '\\') {
            *out++ = *in++;
            continue;
        }
        in++;
        switch (*in) {
        case 'n':
            *out++ = '\n';
            break;
        case 't':
            *out++ = '\t';
            break;
        case 'r':
            *out++ = '\r';
            break;
        case '0':
            *out++ = '\0';
            break;
        case '\\':
            *out++ = '\\';
            break;
        case '"':
            *out++ = '"';
            break;
        case 'x':
            if (hexval(in[1]) < 0 || hexval(in[2]) < 0) {
                *why = "\\x followed by two hex digits";
                return -1;
            }
            *out++ = (char)(hexval(in[1]) * 16 + hexval(in[2]));
            in += 2;
            break;
        default:
            *why = "an escape \\n \\t \\r \\0 \\\\ \\\" or \\xHH";
            return -1;
        }
        in++;
    }
    if (*in != '"') {
        *why = "a closing '\"'";
        return -1;
    }
    *end = in + 1;
    return (long)(out - s);
}

/* Split line (modified in place) into tokens. Returns the count, or -1 after fail(). */
static int tokenize(parser *p, char *line, tok *t)
{
    int n = 0;
    char *c = line;
    for (;;) {
        while (*c == ' ' || *c == '\t' || *c == '\r' || *c == '\n')
            c++;
        if (!*c || *c == '#')
            return n;
        if (n == MAX_TOKENS) {
            fail(p, "at most %d words on a line", MAX_TOKENS);
            return -1;
        }
        if (*c == '"') {
            const char *why = NULL;
            char *end;
            long len = decode_quoted(c + 1, &end, &why);
            if (len < 0) {
                fail(p, "expected %s in a quoted string", why);
                return -1;
            }
            t[n++] = (tok){c + 1, (size_t)len, true};
            if (*end && *end != ' ' && *end != '\t' && *end != '\r' && *end != '\n') {
                fail(p, "expected a space after a quoted string");
                return -1;
            }
            c[1 + len] = '\0';
            c = *end ? end + 1 : end;
            continue;
        }
        char *s = c;
        while (*c && *c != ' ' && *c != '\t' && *c != '\r' && *c != '\n')
            c++;
        t[n++] = (tok){s, (size_t)(c - s), false};
        if (*c)
            *c++ = '\0';
    }
}

/* ---- operands ---- */

static vms_status proc_ref(parser *p, const tok *t, int *idx)
{
    vms_scenario *sc = p->sc;
    *idx = lookup(sc->names, sc->nnames, t);
    if (*idx < 0 || !p->alive[*idx])
        return fail(p,
                    "expected the name of a running process, got '%s' (spawn or fork it "
                    "first)",
                    str(p, t));
    return VMS_OK;
}

/* Define process name t (new, or reusing a name whose process exited). */
static vms_status proc_new(parser *p, const tok *t, int *idx)
{
    vms_scenario *sc = p->sc;
    if (t->quoted || !t->len)
        return fail(p, "expected a process name");
    *idx = lookup(sc->names, sc->nnames, t);
    if (*idx >= 0 && p->alive[*idx])
        return fail(p, "process '%s' already exists", str(p, t));
    if (*idx < 0) {
        *idx = add_str(p, &sc->names, &sc->nnames, &sc->names_cap, t->s, t->len);
        if (*idx < 0 ||
            !vmsi_grow(sc->alloc, (void **)&p->alive, &p->alive_cap, sc->nnames, sizeof *p->alive))
            return vmsi_err(p->err, VMS_ERR_NOMEM, "out of memory parsing %s", sc->name);
    }
    p->alive[*idx] = true;
    return VMS_OK;
}

static vms_status number(parser *p, const tok *t, bool suffix, const char *what, uint64_t *v)
{
    if (t->quoted || !vms_parse_u64(t->s, suffix, v))
        return fail(p, "expected %s, got '%s'", what, str(p, t));
    return VMS_OK;
}

/* A core number: below VMS_MAX_CORES (the machine's own count is checked when it runs). */
static vms_status core_number(parser *p, const tok *t, unsigned *core)
{
    uint64_t v = 0;
    if (t->quoted || !vms_parse_u64(t->s, false, &v) || v >= VMS_MAX_CORES)
        return fail(p, "expected a core number from 0 to %u, got '%s'", VMS_MAX_CORES - 1,
                    str(p, t));
    *core = (unsigned)v;
    return VMS_OK;
}

/* ADDR: 0x…, decimal, `auto` (when allowed), LABEL or LABEL+OFFSET. */
static vms_status address(parser *p, const tok *t, bool allow_auto, scn_addr *a)
{
    *a = (scn_addr){false, -1, 0};
    if (allow_auto && tok_is(t, "auto")) {
        a->is_auto = true;
        return VMS_OK;
    }
    if (!t->quoted && t->len && t->s[0] >= '0' && t->s[0] <= '9')
        return number(p, t, false, "an address (0x… hex)", &a->value);
    char *plus = memchr(t->s, '+', t->len);
    tok name = {t->s, plus ? (size_t)(plus - t->s) : t->len, false};
    a->label = lookup(p->sc->labels, p->sc->nlabels, &name);
    if (a->label < 0 || t->quoted)
        return fail(p,
                    "expected an address (0x…%s or a label defined by `mmap … as LABEL`), "
                    "got '%s'",
                    allow_auto ? ", auto" : "", str(p, t));
    if (plus && !vms_parse_u64(plus + 1, true, &a->value))
        return fail(p, "expected LABEL+OFFSET with a number after '+', got '%s'", str(p, t));
    /* Labels are user or DMA addresses below 2^57, so an offset below 2^57 cannot wrap. */
    if (a->value >= UINT64_C(1) << 57)
        return fail(p, "offset in '%s' beyond the 57-bit address space (at most 0x%llx)", str(p, t),
                    (unsigned long long)((UINT64_C(1) << 57) - 1));
    return VMS_OK;
}

static vms_status length(parser *p, const tok *t, uint64_t *len)
{
    vms_status st = number(p, t, true, "a length (e.g. 4096, 16K, 2M)", len);
    if (st == VMS_OK && *len == 0)
        return fail(p, "expected a length above 0");
    return st;
}

static vms_status protection(parser *p, const tok *t, unsigned *prot)
{
    *prot = 0;
    if (tok_is(t, "none") || tok_is(t, "-"))
        return VMS_OK;
    for (size_t i = 0; i < t->len && !t->quoted; i++) {
        unsigned bit = t->s[i] == 'r'   ? VMS_PROT_READ
                       : t->s[i] == 'w' ? VMS_PROT_WRITE
                       : t->s[i] == 'x' ? VMS_PROT_EXEC
                                        : 0;
        if (!bit || (*prot & bit))
            return fail(p, "expected a protection r, rw, rx, rwx or none, got '%s'", str(p, t));
        *prot |= bit;
    }
    if (!*prot)
        return fail(p, "expected a protection r, rw, rx, rwx or none, got '%s'", str(p, t));
    return VMS_OK;
}

/* DATA: "text" or 0x hex bytes; appended to the pool. */
static vms_status data(parser *p, const tok *t, size_t *off, size_t *len)
{
    vms_scenario *sc = p->sc;
    size_t n = t->len;
    const char *hex = NULL;
    if (!t->quoted) {
        if (t->len < 4 || t->s[0] != '0' || (t->s[1] != 'x' && t->s[1] != 'X') || (t->len % 2))
            return fail(p, "expected data: \"text\" or hex bytes 0x4142…, got '%s'", str(p, t));
        hex = t->s + 2;
        n = (t->len - 2) / 2;
    }
    if (n == 0)
        return fail(p, "expected data of at least one byte, got '\"\"'");
    if (!vmsi_grow(sc->alloc, (void **)&sc->pool, &sc->pool_cap, sc->pool_len + n, 1))
        return vmsi_err(p->err, VMS_ERR_NOMEM, "out of memory parsing %s", sc->name);
    for (size_t i = 0; i < n; i++) {
        if (!hex) {
            sc->pool[sc->pool_len + i] = (uint8_t)t->s[i];
            continue;
        }
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return fail(p, "expected hex digits in '%s'", str(p, t));
        sc->pool[sc->pool_len + i] = (uint8_t)(hi * 16 + lo);
    }
    *off = sc->pool_len;
    *len = n;
    sc->pool_len += n;
    return VMS_OK;
}

/* `expect segv|ok|error|DATA` at t[i] (if present). allowed: which forms this command has. */
static vms_status expectation(parser *p, tok *t, int n, int i, scn_cmd *c, unsigned allowed)
{
    if (i >= n)
        return VMS_OK;
    if (!tok_is(&t[i], "expect") || i + 1 >= n)
        return fail(p, "expected 'expect …' or the end of the line, got '%s'", str(p, &t[i]));
    if (i + 2 < n)
        return fail(p, "expected the end of the line after '%s %s'", str(p, &t[i]),
                    str(p, &t[i + 1]));
    tok *e = &t[i + 1];
    if (tok_is(e, "segv") && (allowed & (1u << EXP_SEGV)))
        c->expect = EXP_SEGV;
    else if (tok_is(e, "ok") && (allowed & (1u << EXP_OK)))
        c->expect = EXP_OK;
    else if (tok_is(e, "error") && (allowed & (1u << EXP_ERROR)))
        c->expect = EXP_ERROR;
    else if (allowed & (1u << EXP_DATA)) {
        c->expect = EXP_DATA;
        return data(p, e, &c->data_off, &c->data_len);
    } else
        return fail(p, "expected %s after 'expect', got '%s'",
                    allowed & (1u << EXP_ERROR) ? "'error' or 'ok'" : "'segv' or 'ok'", str(p, e));
    return VMS_OK;
}

#define EXPECT_ACCESS  ((1u << EXP_SEGV) | (1u << EXP_OK))
#define EXPECT_SYSCALL ((1u << EXP_ERROR) | (1u << EXP_OK))

static vms_status argc_is(parser *p, int n, int want_min, const char *usage)
{
    if (n < want_min)
        return fail(p, "expected '%s'", usage);
    return VMS_OK;
}

/* The usage line of c's command (its row of vmsi_scn_commands). */
static const char *usage_of(const scn_cmd *c)
{
    return vmsi_scn_commands[c->def].usage;
}

/* ---- commands ---- */

/* Define label l (the word after `as`). */
static vms_status new_label(parser *p, const tok *l, int *idx)
{
    vms_scenario *sc = p->sc;
    if (l->quoted || !l->len || lookup(sc->labels, sc->nlabels, l) >= 0 ||
        memchr(l->s, '+', l->len) || (l->s[0] >= '0' && l->s[0] <= '9'))
        return fail(p, "expected a new label name after 'as', got '%s'", str(p, l));
    *idx = add_str(p, &sc->labels, &sc->nlabels, &sc->labels_cap, l->s, l->len);
    if (*idx < 0)
        return vmsi_err(p->err, VMS_ERR_NOMEM, "out of memory parsing %s", sc->name);
    return VMS_OK;
}

/* Parse `key=value` options of mmap from t[i…]; stops at `expect`. */
static vms_status mmap_options(parser *p, tok *t, int n, int *i, scn_cmd *c)
{
    vms_scenario *sc = p->sc;
    bool kind_set = false, share_set = false;
    c->flags = VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS;
    for (; *i < n && !tok_is(&t[*i], "expect"); (*i)++) {
        tok *o = &t[*i];
        if (tok_is(o, "anon") && !kind_set) {
            kind_set = true;
        } else if (!o->quoted && (!strncmp(o->s, "file=", 5) || !strncmp(o->s, "shm=", 4)) &&
                   !kind_set) {
            c->shm = o->s[0] == 's';
            size_t skip = c->shm ? 4 : 5;
            if (o->len == skip)
                return fail(p, "expected a %s after '%s'", c->shm ? "name" : "path", str(p, o));
            c->path = add_str(p, &sc->strs, &sc->nstrs, &sc->strs_cap, o->s + skip, o->len - skip);
            if (c->path < 0)
                return vmsi_err(p->err, VMS_ERR_NOMEM, "out of memory parsing %s", sc->name);
            c->flags &= ~VMS_MAP_ANONYMOUS;
            kind_set = true;
        } else if ((tok_is(o, "private") || tok_is(o, "shared")) && !share_set) {
            c->flags &= ~(VMS_MAP_PRIVATE | VMS_MAP_SHARED);
            c->flags |= o->s[0] == 'p' ? VMS_MAP_PRIVATE : VMS_MAP_SHARED;
            share_set = true;
        } else if (tok_is(o, "populate")) {
            c->flags |= VMS_MAP_POPULATE;
        } else if (tok_is(o, "locked")) {
            c->flags |= VMS_MAP_LOCKED;
        } else if (tok_is(o, "fixed")) {
            c->flags |= VMS_MAP_FIXED;
        } else if (tok_is(o, "huge=2M") || tok_is(o, "huge=1G")) {
            c->flags |= VMS_MAP_HUGETLB | (o->s[5] == '2' ? VMS_MAP_HUGE_2MB : VMS_MAP_HUGE_1GB);
        } else if (tok_is(o, "noreserve")) {
            c->flags |= VMS_MAP_NORESERVE;
        } else if (tok_is(o, "as") && *i + 1 < n) {
            vms_status st = new_label(p, &t[++*i], &c->def_label);
            if (st != VMS_OK)
                return st;
        } else {
            return fail(p,
                        "expected an mmap option (anon, file=PATH, shm=NAME, private, shared, "
                        "populate, locked, fixed, huge=2M|1G, noreserve, as LABEL), got '%s'",
                        str(p, o));
        }
    }
    if (c->shm && !(c->flags & VMS_MAP_SHARED))
        return fail(p, "expected 'shared' with shm=NAME (shared memory is mapped shared)");
    return VMS_OK;
}

vms_status vmsi_scn_parse_mmap(parser *p, tok *t, int n, scn_cmd *c)
{
    vms_status st = argc_is(p, n, 5, usage_of(c));
    if (st == VMS_OK)
        st = proc_ref(p, &t[1], &c->proc);
    if (st == VMS_OK)
        st = address(p, &t[2], true, &c->addr);
    if (st == VMS_OK)
        st = length(p, &t[3], &c->len);
    if (st == VMS_OK)
        st = protection(p, &t[4], &c->prot);
    int i = 5;
    if (st == VMS_OK)
        st = mmap_options(p, t, n, &i, c);
    if (st == VMS_OK)
        st = expectation(p, t, n, i, c, EXPECT_SYSCALL);
    return st;
}

/* NAME ADDR LEN [extra] — munmap, mprotect, mlock, munlock, madvise, msync. */
vms_status vmsi_scn_parse_range(parser *p, tok *t, int n, scn_cmd *c)
{
    int extra = c->op == OP_MPROTECT || c->op == OP_MADVISE;
    vms_status st = argc_is(p, n, 4 + extra, usage_of(c));
    if (st == VMS_OK)
        st = proc_ref(p, &t[1], &c->proc);
    if (st == VMS_OK)
        st = address(p, &t[2], false, &c->addr);
    if (st == VMS_OK)
        st = length(p, &t[3], &c->len);
    if (st == VMS_OK && c->op == OP_MPROTECT)
        st = protection(p, &t[4], &c->prot);
    if (st == VMS_OK && c->op == OP_MADVISE) { /* the advice, kept in prot */
        if (tok_is(&t[4], "dontneed"))
            c->prot = VMS_MADV_DONTNEED;
        else if (tok_is(&t[4], "hugepage"))
            c->prot = VMS_MADV_HUGEPAGE;
        else if (tok_is(&t[4], "nohugepage"))
            c->prot = VMS_MADV_NOHUGEPAGE;
        else
            st = fail(p, "expected advice 'dontneed', 'hugepage' or 'nohugepage', got '%s'",
                      str(p, &t[4]));
    }
    if (st == VMS_OK)
        st = expectation(p, t, n, 4 + extra, c, EXPECT_SYSCALL);
    return st;
}

vms_status vmsi_scn_parse_access(parser *p, tok *t, int n, scn_cmd *c)
{
    vms_status st = argc_is(p, n, c->op == OP_FETCH ? 3 : 4, usage_of(c));
    if (st == VMS_OK)
        st = proc_ref(p, &t[1], &c->proc);
    if (st == VMS_OK)
        st = address(p, &t[2], false, &c->addr);
    if (st != VMS_OK)
        return st;
    switch (c->op) {
    case OP_WRITE:
        st = data(p, &t[3], &c->data_off, &c->data_len);
        return st == VMS_OK ? expectation(p, t, n, 4, c, EXPECT_ACCESS) : st;
    case OP_READ:
        st = length(p, &t[3], &c->len);
        if (st == VMS_OK && c->len > VMS_TASK_SIZE) /* more than any process can map */
            return fail(p, "expected a length of at most 0x%llx (the user address space), got '%s'",
                        (unsigned long long)VMS_TASK_SIZE, str(p, &t[3]));
        if (st == VMS_OK)
            st = expectation(p, t, n, 4, c, EXPECT_ACCESS | (1u << EXP_DATA));
        if (st == VMS_OK && c->expect == EXP_DATA && c->data_len != c->len)
            return fail(p,
                        "a read of %llu bytes cannot be checked against %zu bytes of data: "
                        "expected LEN %zu",
                        (unsigned long long)c->len, c->data_len, c->data_len);
        return st;
    default:
        c->len = 1;
        return expectation(p, t, n, 3, c, EXPECT_ACCESS);
    }
}

vms_status vmsi_scn_parse_touch(parser *p, tok *t, int n, scn_cmd *c)
{
    vms_status st = argc_is(p, n, 4, usage_of(c));
    if (st == VMS_OK)
        st = proc_ref(p, &t[1], &c->proc);
    if (st == VMS_OK)
        st = address(p, &t[2], false, &c->addr);
    if (st == VMS_OK)
        st = length(p, &t[3], &c->len);
    c->kind = VMS_ACC_READ;
    c->step = VMS_PAGE_SIZE;
    for (int i = 4; st == VMS_OK && i < n; i++) {
        if (tok_is(&t[i], "read") || tok_is(&t[i], "write") || tok_is(&t[i], "exec"))
            c->kind = t[i].s[0] == 'r'   ? VMS_ACC_READ
                      : t[i].s[0] == 'w' ? VMS_ACC_WRITE
                                         : VMS_ACC_EXEC;
        else if (!t[i].quoted && !strncmp(t[i].s, "step=", 5))
            st = vms_parse_u64(t[i].s + 5, true, &c->step) && c->step
                     ? VMS_OK
                     : fail(p, "expected step=N with N > 0, got '%s'", str(p, &t[i]));
        else if (!t[i].quoted && !strncmp(t[i].s, "random=", 7))
            st = vms_parse_u64(t[i].s + 7, true, &c->count) && c->count
                     ? VMS_OK
                     : fail(p, "expected random=COUNT with COUNT > 0, got '%s'", str(p, &t[i]));
        else
            st = fail(p, "expected read, write, exec, step=N or random=COUNT, got '%s'",
                      str(p, &t[i]));
    }
    return st;
}

vms_status vmsi_scn_parse_show(parser *p, tok *t, int n, scn_cmd *c)
{
    static const char *const what[] = {"maps",       "smaps",     "pagemap",   "walk",
                                       "tlb",        "meminfo",   "vmstat",    "stats",
                                       "procs",      "iommu",     "dmesg",     "sched",
                                       "khugepaged", "buddyinfo", "hugepages", "pagetypeinfo"};
    static const int nargs[] = {1, 1, 2, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    if (n < 2)
        return fail(p, "expected '%s'", usage_of(c));
    unsigned w;
    for (w = 0; w < sizeof what / sizeof what[0]; w++)
        if (tok_is(&t[1], what[w]))
            break;
    if (w == sizeof what / sizeof what[0])
        return fail(
            p,
            "expected maps, smaps, pagemap, walk, tlb, meminfo, vmstat, stats, procs, "
            "iommu, dmesg, sched, khugepaged, buddyinfo, hugepages or pagetypeinfo, got '%s'",
            str(p, &t[1]));
    c->show = (scn_show)w;
    if (n < 2 + nargs[w])
        return fail(p, "expected 'show %s%s'", what[w],
                    w == SHOW_TLB   ? " CORE [l1i|l1d|l2]"
                    : nargs[w] == 2 ? " NAME ADDR"
                    : nargs[w]      ? " NAME"
                                    : "");
    vms_status st = VMS_OK;
    c->tlb_level = -1;
    c->len = 1;
    if (w == SHOW_DMESG || w == SHOW_IOMMU) {
        if (n > 3 || (n == 3 && w == SHOW_IOMMU))
            return fail(p, "expected 'show iommu' or 'show dmesg [TEXT]'");
        if (n == 3) {
            c->path = add_str(p, &p->sc->strs, &p->sc->nstrs, &p->sc->strs_cap, t[2].s, t[2].len);
            if (c->path < 0)
                return vmsi_err(p->err, VMS_ERR_NOMEM, "out of memory parsing %s", p->sc->name);
        }
        return VMS_OK;
    }
    if (w == SHOW_TLB) {
        st = core_number(p, &t[2], &c->core);
        if (st == VMS_OK && n > 3) {
            static const char *const lv[] = {"l1i", "l1d", "l2"};
            for (int l = 0; l < 3; l++)
                if (tok_is(&t[3], lv[l]))
                    c->tlb_level = l;
            if (c->tlb_level < 0)
                st = fail(p, "expected l1i, l1d or l2, got '%s'", str(p, &t[3]));
        }
        return st;
    }
    if (nargs[w] >= 1)
        st = proc_ref(p, &t[2], &c->proc);
    if (st == VMS_OK && nargs[w] == 2)
        st = address(p, &t[3], false, &c->addr);
    if (st == VMS_OK && w == SHOW_PAGEMAP && n > 4)
        st = number(p, &t[4], false, "a page count", &c->len);
    return st;
}

bool vmsi_scn_cores(const char *s, size_t len, uint64_t mask[VMS_MAX_CORES / 64])
{
    memset(mask, 0, VMS_MAX_CORES / 8);
    if (len == 3 && !memcmp(s, "all", 3)) {
        memset(mask, 0xff, VMS_MAX_CORES / 8);
        return true;
    }
    size_t i = 0;
    while (i < len) {
        unsigned a = 0, b;
        size_t d = i;
        while (i < len && s[i] >= '0' && s[i] <= '9' && a < VMS_MAX_CORES)
            a = a * 10 + (unsigned)(s[i++] - '0');
        if (i == d || a >= VMS_MAX_CORES)
            return false;
        b = a;
        if (i < len && s[i] == '-') {
            d = ++i;
            b = 0;
            while (i < len && s[i] >= '0' && s[i] <= '9' && b < VMS_MAX_CORES)
                b = b * 10 + (unsigned)(s[i++] - '0');
            if (i == d || b >= VMS_MAX_CORES || b < a)
                return false;
        }
        for (unsigned c = a; c <= b; c++)
            mask[c / 64] |= UINT64_C(1) << (c % 64);
        if (i < len && s[i++] != ',')
            return false;
        if (i == len && s[len - 1] == ',')
            return false;
    }
    return len > 0;
}

/* Parse the optional `core N` suffix of spawn/thread at t[i]. */
static vms_status core_opt(parser *p, tok *t, int n, int i, scn_cmd *c)
{
    if (i == n)
        return VMS_OK;
    if (i + 2 != n || !tok_is(&t[i], "core"))
        return fail(p, "expected 'core N' or the end of the line, got '%s'", str(p, &t[i]));
    return core_number(p, &t[i + 1], &c->core);
}

vms_status vmsi_scn_parse_procs(parser *p, tok *t, int n, scn_cmd *c)
{
    vms_status st;
    switch (c->op) {
    case OP_SPAWN:
        st = argc_is(p, n, 2, usage_of(c));
        if (st == VMS_OK)
            st = core_opt(p, t, n, 2, c);
        return st == VMS_OK ? proc_new(p, &t[1], &c->proc) : st;
    case OP_FORK:
    case OP_THREAD:
        st = argc_is(p, n, 3, usage_of(c));
        if (st == VMS_OK)
            st = proc_ref(p, &t[1], &c->proc);
        if (st == VMS_OK)
            st = c->op == OP_FORK && n > 3 ? fail(p, "expected '%s'", usage_of(c))
                                           : core_opt(p, t, n, 3, c);
        return st == VMS_OK ? proc_new(p, &t[2], &c->proc2) : st;
    case OP_CORE:
        st = argc_is(p, n, 3, usage_of(c));
        if (st == VMS_OK)
            st = proc_ref(p, &t[1], &c->proc);
        return st == VMS_OK ? core_number(p, &t[2], &c->core) : st;
    case OP_AFFINITY: {
        uint64_t mask[VMS_MAX_CORES / 64];
        st = argc_is(p, n, 3, usage_of(c));
        if (st == VMS_OK && n != 3)
            st = fail(p, "expected '%s'", usage_of(c));
        if (st == VMS_OK)
            st = proc_ref(p, &t[1], &c->proc);
        if (st == VMS_OK && !vmsi_scn_cores(t[2].s, t[2].len, mask))
            st = fail(p, "expected a core list like 0-3,8 or 'all', got '%s'", str(p, &t[2]));
        if (st == VMS_OK) {
            c->path = add_str(p, &p->sc->strs, &p->sc->nstrs, &p->sc->strs_cap, t[2].s, t[2].len);
            if (c->path < 0)
                return vmsi_err(p->err, VMS_ERR_NOMEM, "out of memory parsing %s", p->sc->name);
        }
        return st;
    }
    case OP_BRK:
        st = argc_is(p, n, 3, usage_of(c));
        if (st == VMS_OK)
            st = proc_ref(p, &t[1], &c->proc);
        return st == VMS_OK ? address(p, &t[2], false, &c->addr) : st;
    case OP_EXEC: /* exec NAME [PATH [as LABEL]] */
        if (n != 2 && n != 3 && !(n == 5 && tok_is(&t[3], "as")))
            return fail(p, "expected '%s'", usage_of(c));
        st = proc_ref(p, &t[1], &c->proc);
        if (st == VMS_OK && n >= 3) {
            c->path = add_str(p, &p->sc->strs, &p->sc->nstrs, &p->sc->strs_cap, t[2].s, t[2].len);
            if (c->path < 0)
                return vmsi_err(p->err, VMS_ERR_NOMEM, "out of memory parsing %s", p->sc->name);
        }
        if (st == VMS_OK && n == 5)
            st = new_label(p, &t[4], &c->def_label);
        return st;
    default: /* exit */
        st = argc_is(p, n, 2, usage_of(c));
        if (st == VMS_OK)
            st = proc_ref(p, &t[1], &c->proc);
        if (st == VMS_OK && c->op == OP_EXIT)
            p->alive[c->proc] = false;
        return st;
    }
}

/* ---- devices and DMA (docs/SCENARIO.md "Devices") ---- */

/* A device defined by an earlier `device` line; want_kind < 0 accepts any kind. */
static vms_status dev_ref(parser *p, const tok *t, int want_kind, int *idx)
{
    static const char *const kinds[] = {"nic", "blk", "raw"};
    vms_scenario *sc = p->sc;
    *idx = lookup(sc->devs, sc->ndevs, t);
    if (*idx < 0)
        return fail(p, "expected a device name defined by 'device', got '%s'", str(p, t));
    if (want_kind >= 0 && sc->devkinds[*idx] != (unsigned)want_kind)
        return fail(p, "expected a %s device, '%s' is a %s", kinds[want_kind], str(p, t),
                    kinds[sc->devkinds[*idx]]);
    return VMS_OK;
}

/* `expect blocked|ok` (and for DMA reads, DATA) at t[i]. */
static vms_status dma_expect(parser *p, tok *t, int n, int i, scn_cmd *c, bool data_ok)
{
    if (i + 2 == n && tok_is(&t[i], "expect") && tok_is(&t[i + 1], "blocked")) {
        c->expect = EXP_BLOCKED;
        return VMS_OK;
    }
    return expectation(p, t, n, i, c, (1u << EXP_OK) | (data_ok ? 1u << EXP_DATA : 0));
}

vms_status vmsi_scn_parse_device(parser *p, tok *t, int n, scn_cmd *c)
{
    static const char *const kinds[] = {"nic", "blk", "raw"};
    static const char *const modes[] = {"iommu", "passthrough", "noiommu"};
    vms_scenario *sc = p->sc;
    if (n < 3)
        return fail(p, "expected 'device nic|raw NAME [iommu|passthrough|noiommu|vm VM [posted]]' "
                       "or 'device blk NAME FILE [iommu|passthrough|noiommu|vm VM [posted]] "
                       "[writable]'");
    for (c->devkind = 0; c->devkind < 3 && !tok_is(&t[1], kinds[c->devkind]); c->devkind++)
        ;
    if (c->devkind == 3)
        return fail(p, "expected a device kind nic, blk or raw, got '%s'", str(p, &t[1]));
    if (t[2].quoted || lookup(sc->devs, sc->ndevs, &t[2]) >= 0)
        return fail(p, "expected a new device name, got '%s'", str(p, &t[2]));
    int i = 3;
    if (c->devkind == 1) {
        if (n < 4)
            return fail(p, "expected 'device blk NAME FILE'");
        c->path = add_str(p, &sc->strs, &sc->nstrs, &sc->strs_cap, t[3].s, t[3].len);
        if (c->path < 0)
            return vmsi_err(p->err, VMS_ERR_NOMEM, "out of memory parsing %s", sc->name);
        i = 4;
    }
    bool mode_set = false;
    for (; i < n; i++) {
        unsigned m;
        for (m = 0; m < 3 && !tok_is(&t[i], modes[m]); m++)
            ;
        if (m < 3 && !mode_set) {
            c->devmode = m;
            mode_set = true;
        } else if (c->devkind == 1 && tok_is(&t[i], "writable")) {
            c->flag = true;
        } else if (tok_is(&t[i], "noncoherent")) {
            c->noncoherent = true;
        } else if (tok_is(&t[i], "vm") && i + 1 < n && c->vm < 0) {
            c->vm = lookup(sc->vmnames, sc->nvmnames, &t[++i]);
            if (c->vm < 0)
                return fail(p,
                            "expected the name of a VM after 'vm' (vm create NAME first), got "
                            "'%s'",
                            str(p, &t[i]));
        } else if (tok_is(&t[i], "posted")) {
            c->posted = true;
        } else {
            return fail(p,
                        "expected iommu, passthrough, noiommu, noncoherent, vm VM, posted%s, got "
                        "'%s'",
                        c->devkind == 1 ? " or writable" : "", str(p, &t[i]));
        }
    }
    if (c->posted && c->vm < 0)
        return fail(p, "'posted' (posted interrupts) is for a device assigned to a VM (vm VM)");
    if (c->vm >= 0 && mode_set)
        return fail(p,
                    "a device assigned to a VM sits behind the host's IOMMU with the VM's "
                    "mappings: drop '%s'",
                    modes[c->devmode]);
    c->dev = add_str(p, &sc->devs, &sc->ndevs, &sc->devs_cap, t[2].s, t[2].len);
    if (c->dev < 0 || !vmsi_grow(sc->alloc, (void **)&sc->devkinds, &sc->devkinds_cap,
                                 (size_t)c->dev, sizeof *sc->devkinds))
        return vmsi_err(p->err, VMS_ERR_NOMEM, "out of memory parsing %s", sc->name);
    sc->devkinds[c->dev] = c->devkind;
    return VMS_OK;
}

static vms_status parse_dma_map(parser *p, tok *t, int n, scn_cmd *c)
{
    c->op = OP_DMA_MAP;
    vms_status st = argc_is(p, n, 6, "dma map DEV PROC ADDR LEN [read|write|rw] [as LABEL]");
    if (st == VMS_OK)
        st = dev_ref(p, &t[2], -1, &c->dev);
    if (st == VMS_OK)
        st = proc_ref(p, &t[3], &c->proc);
    if (st == VMS_OK)
        st = address(p, &t[4], false, &c->addr);
    if (st == VMS_OK)
        st = length(p, &t[5], &c->len);
    int i = 6;
    c->dir = 0; /* VMS_DMA_BIDIRECTIONAL */
    for (; st == VMS_OK && i < n && !tok_is(&t[i], "expect"); i++) {
        if (tok_is(&t[i], "read") || tok_is(&t[i], "write") || tok_is(&t[i], "rw"))
            c->dir = t[i].s[0] == 'w' ? 2u : t[i].s[1] == 'e' ? 1u : 0u;
        else if (tok_is(&t[i], "as") && i + 1 < n)
            st = new_label(p, &t[++i], &c->def_label);
        else
            st = fail(p, "expected read, write, rw, 'as LABEL' or 'expect', got '%s'",
                      str(p, &t[i]));
    }
    return st == VMS_OK ? expectation(p, t, n, i, c, EXPECT_SYSCALL) : st;
}

/* dma sync DEV ADDR LEN cpu|device */
static vms_status parse_dma_sync(parser *p, tok *t, int n, scn_cmd *c)
{
    c->op = OP_DMA_SYNC;
    vms_status st = argc_is(p, n, 5, "dma sync DEV ADDR LEN cpu|device");
    if (st == VMS_OK)
        st = dev_ref(p, &t[2], -1, &c->dev);
    if (st == VMS_OK)
        st = address(p, &t[3], false, &c->addr);
    if (st == VMS_OK)
        st = length(p, &t[4], &c->len);
    if (st == VMS_OK && n > 5 && !tok_is(&t[5], "cpu") && !tok_is(&t[5], "device"))
        st = fail(p, "expected cpu or device, got '%s'", str(p, &t[5]));
    if (st == VMS_OK && n < 6)
        st = fail(p, "expected 'dma sync DEV ADDR LEN cpu|device'");
    c->flag = st == VMS_OK && tok_is(&t[5], "cpu");
    return st == VMS_OK ? expectation(p, t, n, 6, c, EXPECT_SYSCALL) : st;
}

/* dma map … | dma unmap DEV ADDR | dma DEV ADDR read LEN | dma DEV ADDR write DATA */
vms_status vmsi_scn_parse_dma(parser *p, tok *t, int n, scn_cmd *c)
{
    if (n >= 2 && tok_is(&t[1], "map"))
        return parse_dma_map(p, t, n, c);
    if (n >= 2 && tok_is(&t[1], "sync"))
        return parse_dma_sync(p, t, n, c);
    vms_status st;
    if (n >= 2 && tok_is(&t[1], "unmap")) {
        c->op = OP_DMA_UNMAP;
        st = argc_is(p, n, 4, "dma unmap DEV ADDR");
        if (st == VMS_OK)
            st = dev_ref(p, &t[2], -1, &c->dev);
        if (st == VMS_OK)
            st = address(p, &t[3], false, &c->addr);
        return st == VMS_OK ? expectation(p, t, n, 4, c, EXPECT_SYSCALL) : st;
    }
    st = argc_is(p, n, 5, "dma DEV ADDR read LEN | dma DEV ADDR write DATA");
    if (st == VMS_OK)
        st = dev_ref(p, &t[1], -1, &c->dev);
    if (st == VMS_OK)
        st = address(p, &t[2], false, &c->addr);
    if (st != VMS_OK)
        return st;
    if (tok_is(&t[3], "write")) {
        c->flag = true;
        st = data(p, &t[4], &c->data_off, &c->data_len);
        return st == VMS_OK ? dma_expect(p, t, n, 5, c, false) : st;
    }
    if (!tok_is(&t[3], "read"))
        return fail(p, "expected read or write, got '%s'", str(p, &t[3]));
    st = length(p, &t[4], &c->len);
    if (st == VMS_OK && c->len > 65536)
        st = fail(p, "expected a DMA of at most 64K");
    return st == VMS_OK ? dma_expect(p, t, n, 5, c, true) : st;
}

vms_status vmsi_scn_parse_nic(parser *p, tok *t, int n, scn_cmd *c)
{
    vms_status st = argc_is(p, n, 4, usage_of(c));
    if (st == VMS_OK)
        st = dev_ref(p, &t[2], 0, &c->dev);
    if (st != VMS_OK)
        return st;
    if (tok_is(&t[1], "post")) {
        c->op = OP_NIC_POST;
        st = address(p, &t[3], false, &c->addr);
        return st == VMS_OK ? expectation(p, t, n, 4, c, EXPECT_SYSCALL) : st;
    }
    if (!tok_is(&t[1], "receive"))
        return fail(p, "expected 'nic post' or 'nic receive', got 'nic %s'", str(p, &t[1]));
    c->op = OP_NIC_RX;
    st = data(p, &t[3], &c->data_off, &c->data_len);
    if (st == VMS_OK && c->data_len > VMS_NIC_MAX_PACKET_SCN)
        st = fail(p, "expected a packet of at most 16384 bytes");
    return st == VMS_OK ? dma_expect(p, t, n, 4, c, false) : st;
}

vms_status vmsi_scn_parse_blk(parser *p, tok *t, int n, scn_cmd *c)
{
    vms_status st = argc_is(p, n, 6, usage_of(c));
    if (st == VMS_OK && !tok_is(&t[1], "read") && !tok_is(&t[1], "write"))
        st = fail(p, "expected 'blk read' or 'blk write', got 'blk %s'", str(p, &t[1]));
    c->flag = st == VMS_OK && t[1].s[0] == 'w';
    if (st == VMS_OK)
        st = dev_ref(p, &t[2], 1, &c->dev);
    if (st == VMS_OK)
        st = number(p, &t[3], false, "a sector number", &c->step);
    if (st == VMS_OK)
        st = number(p, &t[4], false, "a sector count", &c->count);
    if (st == VMS_OK && (c->count == 0 || c->count > 65536))
        st = fail(p, "expected a sector count of 1 … 65536");
    if (st == VMS_OK)
        st = address(p, &t[5], false, &c->addr);
    return st == VMS_OK ? expectation(p, t, n, 6, c, EXPECT_SYSCALL) : st;
}

vms_status vmsi_scn_parse_iommu(parser *p, tok *t, int n, scn_cmd *c)
{
    if (n < 2 || (!tok_is(&t[1], "on") && !tok_is(&t[1], "off")))
        return fail(p, "expected 'iommu on' or 'iommu off'");
    c->flag = t[1].s[1] == 'n';
    return expectation(p, t, n, 2, c, EXPECT_SYSCALL);
}

vms_status vmsi_scn_parse_set_echo(parser *p, tok *t, int n, scn_cmd *c)
{
    vms_scenario *sc = p->sc;
    if (c->op == OP_SET && (p->seen_command || n != 2 || !memchr(t[1].s, '=', t[1].len)))
        return fail(
            p, p->seen_command ? "expected '%s' lines before every other command" : "expected '%s'",
            usage_of(c));
    if (c->op == OP_ECHO && (n != 2 || !t[1].quoted))
        return fail(p, "expected '%s'", usage_of(c));
    c->path = add_str(p, &sc->strs, &sc->nstrs, &sc->strs_cap, t[1].s, t[1].len);
    return c->path < 0 ? vmsi_err(p->err, VMS_ERR_NOMEM, "out of memory parsing %s", sc->name)
                       : VMS_OK;
}

/* "unknown command 'WORD': expected one of spawn, mmap, …": the word first, then as many
 * of vmsi_scn_commands as the error buffer holds, and where the rest are listed. */
static vms_status unknown_command(parser *p, const tok *t)
{
    char list[512];
    size_t name = strlen(p->sc->name), word = t->len;
    size_t used = (name < NAME_SHOWN ? name : NAME_SHOWN) + 13 /* ":LINE: " */ +
                  (word < TOK_SHOWN ? word : TOK_SHOWN + 3) +
                  sizeof "unknown command '': expected one of ";
    size_t room = sizeof p->err->msg - 1 - used, len = 0, i;
    const char *more = ", … (docs/SCENARIO.md lists all)";
    for (i = 0; i < vmsi_scn_ncommands; i++) {
        const char *c = vmsi_scn_commands[i].name;
        if (len + 2 + strlen(c) + strlen(more) > room)
            break;
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", c);
    }
    if (i < vmsi_scn_ncommands)
        snprintf(list + len, sizeof list - len, "%s", more);
    return fail(p, "unknown command '%s': expected one of %s", str(p, t), list);
}

static vms_status parse_command(parser *p, tok *t, int n, scn_cmd *c)
{
    size_t i;
    for (i = 0; i < vmsi_scn_ncommands; i++)
        if (tok_is(&t[0], vmsi_scn_commands[i].name))
            break;
    if (i == vmsi_scn_ncommands)
        return unknown_command(p, &t[0]);
    *c = (scn_cmd){.line = p->line,
                   .op = vmsi_scn_commands[i].op,
                   .def = (unsigned)i,
                   .proc = -1,
                   .proc2 = -1,
                   .path = -1,
                   .def_label = -1,
                   .addr = {false, -1, 0},
                   .dev = -1,
                   .vm = -1};
    if (c->op != OP_SET)
        p->seen_command = true;
    return vmsi_scn_commands[i].parse(p, t, n, c);
}

/* Parse one line (copied into buf); appends a command unless the line is blank. */
static vms_status parse_line(parser *p, char *buf)
{
    tok t[MAX_TOKENS];
    int n = tokenize(p, buf, t);
    if (n < 0)
        return VMS_ERR_PARSE;
    if (n == 0)
        return VMS_OK;
    vms_scenario *sc = p->sc;
    if (!vmsi_grow(sc->alloc, (void **)&sc->cmd, &sc->cmd_cap, sc->ncmd, sizeof *sc->cmd))
        return vmsi_err(p->err, VMS_ERR_NOMEM, "out of memory parsing %s", sc->name);
    vms_status st = parse_command(p, t, n, &sc->cmd[sc->ncmd]);
    if (st == VMS_OK)
        sc->ncmd++;
    return st;
}

static vms_status parse_text(parser *p, const char *text)
{
    char buf[MAX_LINE];
    const char *s = text;
    while (*s) {
        p->line++;
        size_t n = strcspn(s, "\n");
        if (n >= sizeof buf)
            return fail(p, "expected a line shorter than %d bytes", MAX_LINE);
        memcpy(buf, s, n);
        buf[n] = '\0';
        if (memchr(s, '\0', n) != NULL)
            return fail(p, "expected text, found a NUL byte");
        vms_status st = parse_line(p, buf);
        if (st != VMS_OK)
            return st;
        s += n + (s[n] == '\n');
    }
    return VMS_OK;
}

vms_status vms_scenario_parse(const vms_allocator *a, const char *name, const char *text,
                              vms_scenario **out, vms_err *err)
{
    *out = NULL;
    if (!a)
        a = vms_allocator_default();
    vms_scenario *sc = vmsi_zalloc(a, sizeof *sc);
    if (!sc)
        return vmsi_err(err, VMS_ERR_NOMEM, "out of memory parsing %s", name);
    sc->alloc = a;
    const char *slash = strrchr(name, '/');
    sc->name = dup_n(a, name, strlen(name));
    sc->dir = slash ? dup_n(a, name, (size_t)(slash - name)) : dup_n(a, ".", 1);
    if (!sc->name || !sc->dir) {
        vms_scenario_destroy(sc);
        return vmsi_err(err, VMS_ERR_NOMEM, "out of memory parsing %s", name);
    }
    parser p = {.sc = sc, .err = err};
    vms_status st = parse_text(&p, text);
    vmsi_free(a, p.alive, p.alive_cap * sizeof *p.alive);
    if (st != VMS_OK) {
        vms_scenario_destroy(sc);
        return st;
    }
    *out = sc;
    return VMS_OK;
}

vms_status vms_scenario_load(const vms_allocator *a, const char *path, vms_scenario **out,
                             vms_err *err)
{
    *out = NULL;
    if (!a)
        a = vms_allocator_default();
    FILE *f = fopen(path, "rb");
    if (!f)
        return vmsi_err(err, VMS_ERR_IO, "%s: cannot open scenario file: %s", path,
                        strerror(errno));
    struct stat sst;
    if (fstat(fileno(f), &sst) == 0 && S_ISDIR(sst.st_mode)) {
        fclose(f);
        return vmsi_err(err, VMS_ERR_IO, "%s: is a directory, not a scenario file", path);
    }
    vms_strbuf sb;
    vms_strbuf_init(&sb, a);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        vms_strbuf_append(&sb, chunk, n);
    int read_errno = ferror(f) ? errno : 0;
    fclose(f);
    vms_status st;
    if (read_errno)
        st = vmsi_err(err, VMS_ERR_IO, "%s: read error: %s", path, strerror(read_errno));
    else if (sb.failed)
        st = vmsi_err(err, VMS_ERR_NOMEM, "%s: out of memory reading the file", path);
    else if (sb.len != strlen(vms_strbuf_str(&sb)))
        st = vmsi_err(err, VMS_ERR_PARSE, "%s: expected text, found a NUL byte", path);
    else
        st = vms_scenario_parse(a, path, vms_strbuf_str(&sb), out, err);
    vms_strbuf_free(&sb);
    return st;
}

static void free_list(const vms_allocator *a, char **list, size_t n, size_t cap)
{
    for (size_t i = 0; i < n; i++)
        vmsi_free(a, list[i], strlen(list[i]) + 1);
    vmsi_free(a, list, cap * sizeof *list);
}

void vms_scenario_destroy(vms_scenario *sc)
{
    if (!sc)
        return;
    const vms_allocator *a = sc->alloc;
    free_list(a, sc->names, sc->nnames, sc->names_cap);
    free_list(a, sc->labels, sc->nlabels, sc->labels_cap);
    free_list(a, sc->devs, sc->ndevs, sc->devs_cap);
    free_list(a, sc->vmnames, sc->nvmnames, sc->vmnames_cap);
    vmsi_free(a, sc->devkinds, sc->devkinds_cap * sizeof *sc->devkinds);
    free_list(a, sc->strs, sc->nstrs, sc->strs_cap);
    vmsi_free(a, sc->cmd, sc->cmd_cap * sizeof *sc->cmd);
    vmsi_free(a, sc->pool, sc->pool_cap);
    if (sc->name)
        vmsi_free(a, sc->name, strlen(sc->name) + 1);
    if (sc->dir)
        vmsi_free(a, sc->dir, strlen(sc->dir) + 1);
    vmsi_free(a, sc, sizeof *sc);
}

void vmsi_scenario_path(const vms_scenario *sc, const char *arg, char *buf, size_t len)
{
    if (arg[0] == '/' || !sc->dir)
        snprintf(buf, len, "%s", arg);
    else
        snprintf(buf, len, "%s/%s", sc->dir, arg);
}

bool vmsi_scenario_may_write(const vms_scenario *sc, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return false;
    for (unsigned i = 0; i < sc->nwfiles; i++)
        if (sc->wfiles[i].dev == (unsigned long long)st.st_dev &&
            sc->wfiles[i].ino == (unsigned long long)st.st_ino)
            return true;
    return false;
}

vms_status vms_scenario_allow_write(vms_scenario *sc, const char *path, vms_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return vmsi_err(err, VMS_ERR_IO, "%s: cannot allow writing it: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return vmsi_err(err, VMS_ERR_INVAL, "%s: not a regular file", path);
    if (sc->nwfiles == sizeof sc->wfiles / sizeof *sc->wfiles)
        return vmsi_err(err, VMS_ERR_RANGE, "%s: at most 16 writable files", path);
    sc->wfiles[sc->nwfiles++] =
        (struct scn_wfile){(unsigned long long)st.st_dev, (unsigned long long)st.st_ino};
    return VMS_OK;
}

vms_status vms_scenario_check_writes(const vms_scenario *sc, vms_err *err)
{
    for (size_t i = 0; i < sc->ncmd; i++) {
        const scn_cmd *c = &sc->cmd[i];
        if (c->op != OP_DEVICE || c->devkind != 1 || !c->flag)
            continue;
        char path[2048];
        vmsi_scenario_path(sc, sc->strs[c->path], path, sizeof path);
        if (!vmsi_scenario_may_write(sc, path))
            return vmsi_err(err, VMS_ERR_INVAL,
                            "%s:%u: device blk %s: a scenario may not write the host file %s; "
                            "name it on the command line (vmsim run --writable %s) or drop "
                            "`writable`",
                            sc->name, c->line, sc->devs[c->dev], path, path);
    }
    return VMS_OK;
}

vms_status vms_scenario_configure(const vms_scenario *sc, vms_config *c, vms_err *err)
{
    for (size_t i = 0; i < sc->ncmd && sc->cmd[i].op == OP_SET; i++) {
        char where[300];
        snprintf(where, sizeof where, "%s:%u", sc->name, sc->cmd[i].line);
        const char *arg = sc->strs[sc->cmd[i].path];
        const char *eq = strchr(arg, '=');
        char key[128];
        size_t kl = (size_t)(eq - arg) < sizeof key - 1 ? (size_t)(eq - arg) : sizeof key - 1;
        memcpy(key, arg, kl);
        key[kl] = '\0';
        if (vms_config_key_writes_host(key))
            return vmsi_err(err, VMS_ERR_INVAL,
                            "%s: %s names a host file vmsim would write: a scenario may not "
                            "set it; give it on the command line (--set %s=…) or in a "
                            "--config file",
                            where, key, key);
        vms_status st = vms_config_set(c, key, eq + 1, where, err);
        if (st != VMS_OK)
            return st;
    }
    return VMS_OK;
}

/* pkey NAME alloc [noaccess|nowrite] | free KEY | mprotect ADDR LEN PROT KEY, and
 * wrpkru NAME VALUE. c->dir: 0 alloc, 1 free, 2 mprotect; c->count: rights, key or
 * the PKRU value. */
vms_status vmsi_scn_parse_pkey(parser *p, tok *t, int n, scn_cmd *c)
{
    vms_status st = argc_is(p, n, 3, usage_of(c));
    if (st == VMS_OK)
        st = proc_ref(p, &t[1], &c->proc);
    if (st != VMS_OK)
        return st;
    if (c->op == OP_WRPKRU) {
        st = number(p, &t[2], false, "a PKRU value (32 bits)", &c->count);
        if (st == VMS_OK && c->count > UINT32_MAX)
            return fail(p, "expected a PKRU value of 32 bits, got '%s'", str(p, &t[2]));
        return st == VMS_OK ? expectation(p, t, n, 3, c, EXPECT_SYSCALL) : st;
    }
    int i = 3;
    if (tok_is(&t[2], "alloc")) {
        c->dir = 0;
        if (i < n && (tok_is(&t[i], "noaccess") || tok_is(&t[i], "nowrite")))
            c->count = t[i++].s[2] == 'a' ? VMS_PKEY_DISABLE_ACCESS : VMS_PKEY_DISABLE_WRITE;
    } else if (tok_is(&t[2], "free")) {
        c->dir = 1;
        st = argc_is(p, n, 4, usage_of(c));
        if (st == VMS_OK)
            st = number(p, &t[i++], false, "a protection key 0 … 15", &c->count);
    } else if (tok_is(&t[2], "mprotect")) {
        c->dir = 2;
        st = argc_is(p, n, 7, usage_of(c));
        if (st == VMS_OK)
            st = address(p, &t[3], false, &c->addr);
        if (st == VMS_OK)
            st = length(p, &t[4], &c->len);
        if (st == VMS_OK)
            st = protection(p, &t[5], &c->prot);
        if (st == VMS_OK)
            st = number(p, &t[6], false, "a protection key 0 … 15", &c->count);
        i = 7;
    } else {
        return fail(p, "expected alloc, free or mprotect after 'pkey NAME', got '%s'",
                    str(p, &t[2]));
    }
    if (st == VMS_OK && c->dir && c->count >= VMS_NR_PKEYS)
        return fail(p, "expected a protection key 0 … 15, got %llu", (unsigned long long)c->count);
    return st == VMS_OK ? expectation(p, t, n, i, c, EXPECT_SYSCALL) : st;
}

/* kread NAME ADDR LEN [nostac] / kwrite NAME ADDR DATA [nostac]; c->flag: nostac. */
vms_status vmsi_scn_parse_kaccess(parser *p, tok *t, int n, scn_cmd *c)
{
    vms_status st = argc_is(p, n, 4, usage_of(c));
    if (st == VMS_OK)
        st = proc_ref(p, &t[1], &c->proc);
    if (st == VMS_OK)
        st = address(p, &t[2], false, &c->addr);
    if (st == VMS_OK && c->op == OP_KWRITE)
        st = data(p, &t[3], &c->data_off, &c->data_len);
    if (st == VMS_OK && c->op == OP_KREAD) {
        st = length(p, &t[3], &c->len);
        if (st == VMS_OK && c->len > 4096)
            return fail(p, "expected a length of at most 4096 for kread, got '%s'", str(p, &t[3]));
    }
    int i = 4;
    if (st == VMS_OK && i < n && tok_is(&t[i], "nostac")) {
        c->flag = true;
        i++;
    }
    return st == VMS_OK ? expectation(p, t, n, i, c, EXPECT_SYSCALL) : st;
}

/* sysctl keys, by c->dir: /proc/sys/vm (the default pool), compact_memory, and each pool's
 * sysfs files (run.c reads the index). */
static const char *const sysctl_keys[] = {
    "vm.nr_hugepages",
    "vm.nr_overcommit_hugepages",
    "vm.compact_memory",
    "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
    "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_overcommit_hugepages",
    "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages",
    "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_overcommit_hugepages",
};
#define NSYSCTL (sizeof sysctl_keys / sizeof sysctl_keys[0])

/* sysctl KEY=VALUE: the key's index in c->dir, the value in c->count. */
static vms_status parse_sysctl(parser *p, tok *t, int n, scn_cmd *c)
{
    const char *eq = n == 2 && !t[1].quoted ? memchr(t[1].s, '=', t[1].len) : NULL;
    if (!eq)
        return fail(p, "expected '%s'", usage_of(c));
    size_t klen = (size_t)(eq - t[1].s);
    for (c->dir = 0; c->dir < NSYSCTL; c->dir++)
        if (strlen(sysctl_keys[c->dir]) == klen && !memcmp(t[1].s, sysctl_keys[c->dir], klen))
            break;
    if (c->dir == NSYSCTL)
        return fail(p,
                    "expected vm.nr_hugepages, vm.nr_overcommit_hugepages, vm.compact_memory or "
                    "/sys/kernel/mm/hugepages/hugepages-2048kB|1048576kB/"
                    "nr_hugepages|nr_overcommit_hugepages before '=', got '%.*s'",
                    (int)klen, t[1].s);
    if (!vms_parse_u64(eq + 1, false, &c->count) || c->count > (UINT64_C(1) << 24) ||
        (c->dir == 2 && c->count != 1))
        return fail(p, "expected %s after '%s=', got '%s'",
                    c->dir == 2 ? "1" : "a page count up to 16777216", sysctl_keys[c->dir], eq + 1);
    return VMS_OK;
}

/* mount hugetlbfs PATH [pagesize=2M|1G] (c->dir: 0 the default size, 1 2M, 2 1G);
 * truncate PATH LEN; unlink PATH. PATH absolute (a hugetlbfs mount point or a file on
 * one: the kernel checks which when the command runs). */
vms_status vmsi_scn_parse_hugetlbfs(parser *p, tok *t, int n, scn_cmd *c)
{
    int at = c->op == OP_MOUNT ? 2 : 1, i = at + 1;
    if (n <= at || (c->op == OP_MOUNT && !tok_is(&t[1], "hugetlbfs")))
        return fail(p, "expected '%s'", usage_of(c));
    if (t[at].quoted || t[at].s[0] != '/')
        return fail(p, "expected an absolute path, got '%s'", str(p, &t[at]));
    c->path = add_str(p, &p->sc->strs, &p->sc->nstrs, &p->sc->strs_cap, t[at].s, t[at].len);
    if (c->path < 0)
        return vmsi_err(p->err, VMS_ERR_NOMEM, "out of memory parsing %s", p->sc->name);
    vms_status st = VMS_OK;
    c->dir = 0;
    if (c->op == OP_TRUNCATE)
        st = i < n ? length(p, &t[i++], &c->len) : fail(p, "expected '%s'", usage_of(c));
    if (st == VMS_OK && c->op == OP_MOUNT && i < n && !tok_is(&t[i], "expect")) {
        if (tok_is(&t[i], "pagesize=2M") || tok_is(&t[i], "pagesize=1G"))
            c->dir = t[i].s[9] == '2' ? 1 : 2;
        else
            st = fail(p, "expected pagesize=2M or pagesize=1G, got '%s'", str(p, &t[i]));
        i++;
    }
    return st == VMS_OK ? expectation(p, t, n, i, c, EXPECT_SYSCALL) : st;
}

/* khugepaged [RUNS]: RUNS (1 when not given, at most 1,000,000) runs of its scan;
 * compact: no operand; sysctl KEY=VALUE. */
vms_status vmsi_scn_parse_daemon(parser *p, tok *t, int n, scn_cmd *c)
{
    if (c->op == OP_SYSCTL)
        return parse_sysctl(p, t, n, c);
    c->count = 1;
    if (n > 2 || (c->op == OP_COMPACT && n > 1))
        return fail(p, "expected '%s'", usage_of(c));
    if (n == 2 && (number(p, &t[1], false, "a count of runs", &c->count) != VMS_OK ||
                   c->count == 0 || c->count > 1000000))
        return fail(p, "expected a count of runs from 1 to 1000000, got '%s'", str(p, &t[1]));
    return VMS_OK;
}

void vms_scenario_set_vm_config(vms_scenario *sc, const vms_config_vm *vm)
{
    sc->vmdef = *vm;
    sc->vmdef_set = true;
}

/* The `vm create` options, one bit each in scn_vmopt.given. */
enum {
    VMO_MEM = 1,
    VMO_HOST = 2,
    VMO_S2 = 4,
    VMO_HPAGE = 8,
    VMO_LEVELS = 16,
    VMO_HLEVELS = 32,
    VMO_NTLB = 64,
    VMO_SHADOW = 128,
    VMO_HLIMIT = 256
};

/* One `vm create` option at t[*i] (its value after it); advances *i. */
static vms_status vm_option(parser *p, tok *t, int n, int *i, scn_cmd *c)
{
    struct scn_vmopt *o = &c->vmo;
    const tok *w = &t[*i];
    if (tok_is(w, "shadow")) {
        o->shadow = true;
        o->given |= VMO_SHADOW;
        return VMS_OK;
    }
    if (*i + 1 >= n)
        return fail(p, "expected a value after '%s' (%s)", str(p, w), usage_of(c));
    const tok *v = &t[++*i];
    uint64_t x = 0;
    if (tok_is(w, "host-limit")) {
        if (number(p, v, true, "a size (e.g. 16M)", &x) != VMS_OK || x < (UINT64_C(64) << 10) ||
            x > (UINT64_C(1) << 40) || (x & VMS_PAGE_MASK))
            return fail(p, "expected host-limit of 64K to 1T, a multiple of 4K, got '%s'",
                        str(p, v));
        o->host_limit = x;
        o->given |= VMO_HLIMIT;
    } else if (tok_is(w, "mem") || tok_is(w, "host")) {
        bool mem = tok_is(w, "mem");
        uint64_t lo = mem ? UINT64_C(16) << 20 : UINT64_C(8) << 20;
        if (number(p, v, true, "a size (e.g. 1G, 64M)", &x) != VMS_OK || x < lo ||
            x > (UINT64_C(1) << 40) || (x & VMS_PAGE_MASK))
            return fail(p, "expected %s of %lluM to 1T, a multiple of 4K, got '%s'",
                        mem ? "guest memory" : "host memory", (unsigned long long)(lo >> 20),
                        str(p, v));
        *(mem ? &o->mem : &o->host) = x;
        o->given |= mem ? VMO_MEM : VMO_HOST;
    } else if (tok_is(w, "s2")) {
        if (!tok_is(v, "ept") && !tok_is(v, "npt") && !tok_is(v, "arm"))
            return fail(p, "expected s2 ept, npt or arm, got '%s'", str(p, v));
        o->s2 = tok_is(v, "ept") ? 1u : tok_is(v, "npt") ? 2u : 3u; /* vms_s2_kind */
        o->given |= VMO_S2;
    } else if (tok_is(w, "host-page")) {
        static const char *const sz[] = {"4K", "2M", "1G"};
        unsigned k = 0;
        while (k < 3 && !tok_is(v, sz[k]))
            k++;
        if (k == 3)
            return fail(p, "expected host-page 4K, 2M or 1G, got '%s'", str(p, v));
        o->host_page = k;
        o->given |= VMO_HPAGE;
    } else if (tok_is(w, "levels") || tok_is(w, "host-levels")) {
        if (!tok_is(v, "3") && !tok_is(v, "4") && !tok_is(v, "5"))
            return fail(p, "expected %s 4 or 5 (3 for an Arm stage 2), got '%s'", str(p, w),
                        str(p, v));
        bool g = tok_is(w, "levels");
        *(g ? &o->levels : &o->host_levels) = (unsigned)(v->s[0] - '0');
        o->given |= g ? VMO_LEVELS : VMO_HLEVELS;
    } else if (tok_is(w, "guest")) {
        if (!tok_is(v, "kernel") && !tok_is(v, "pager"))
            return fail(p, "expected guest kernel or pager, got '%s'", str(p, v));
        o->guest = tok_is(v, "pager") ? 1u : 2u;
    } else if (tok_is(w, "vcpus")) {
        if (number(p, v, false, "a number of vCPUs", &x) != VMS_OK || x < 1 || x > 64)
            return fail(p, "expected vcpus N with N from 1 to 64, got '%s'", str(p, v));
        o->vcpus = (unsigned)x;
    } else if (tok_is(w, "nested-tlb")) {
        if (number(p, v, false, "a number of entries", &x) != VMS_OK || x > 4096)
            return fail(p, "expected nested-tlb N with N from 0 to 4096, got '%s'", str(p, v));
        o->nested_tlb = (unsigned)x;
        o->given |= VMO_NTLB;
    } else {
        --*i;
        return fail(p,
                    "expected mem, host, s2, host-page, levels, host-levels, host-limit, "
                    "nested-tlb, shadow, guest or vcpus, got '%s'",
                    str(p, w));
    }
    return VMS_OK;
}

/*
 * vm create NAME [options] | vm NAME spawn PROC [core N] | vm NAME show ept|npt|exits |
 * vm NAME vcpu N core C | vm NAME hostswap N.
 * c->vm is the VM-name index; c->vmo.sub says which form; `create` options left out take
 * the vm.* keys when the line runs. PROC becomes a process name whose commands run in
 * the VM (run.c hands them to vm.c).
 */
vms_status vmsi_scn_parse_vm(parser *p, tok *t, int n, scn_cmd *c)
{
    vms_scenario *sc = p->sc;
    c->vm = -1;
    if (n < 3)
        return fail(p, "expected '%s'", usage_of(c));
    if (tok_is(&t[1], "create")) {
        if (t[2].quoted || !t[2].len)
            return fail(p, "expected a VM name, got '%s'", str(p, &t[2]));
        if (lookup(sc->vmnames, sc->nvmnames, &t[2]) >= 0)
            return fail(p, "VM '%s' already exists", str(p, &t[2]));
        c->vm = add_str(p, &sc->vmnames, &sc->nvmnames, &sc->vmnames_cap, t[2].s, t[2].len);
        if (c->vm < 0)
            return vmsi_err(p->err, VMS_ERR_NOMEM, "out of memory parsing %s", sc->name);
        c->vmo.sub = 0;
        for (int i = 3; i < n; i++) {
            vms_status st = vm_option(p, t, n, &i, c);
            if (st != VMS_OK)
                return st;
        }
        return VMS_OK;
    }
    c->vm = lookup(sc->vmnames, sc->nvmnames, &t[1]);
    if (c->vm < 0)
        return fail(p, "expected 'create' or the name of a VM (vm create NAME first), got '%s'",
                    str(p, &t[1]));
    if (tok_is(&t[2], "spawn")) {
        c->vmo.sub = 1;
        if (n != 4 && !(n == 6 && tok_is(&t[4], "core")))
            return fail(p, "expected 'vm %s spawn PROC [core N]'", str(p, &t[1]));
        vms_status st = proc_new(p, &t[3], &c->proc);
        if (st == VMS_OK && n == 6)
            st = core_number(p, &t[5], &c->core);
        return st;
    }
    if (tok_is(&t[2], "vcpu")) { /* vm NAME vcpu N core C: the vCPU moves to host core C */
        c->vmo.sub = 4;
        uint64_t x = 0;
        if (n != 6 || !tok_is(&t[4], "core"))
            return fail(p, "expected 'vm %s vcpu N core C'", str(p, &t[1]));
        if (number(p, &t[3], false, "a vCPU number", &x) != VMS_OK || x >= 64)
            return fail(p, "expected a vCPU number from 0 to 63, got '%s'", str(p, &t[3]));
        c->vmo.vcpu = (unsigned)x;
        return core_number(p, &t[5], &c->core);
    }
    if (tok_is(&t[2], "hostswap")) { /* vm NAME hostswap N: the host reclaims N pages */
        c->vmo.sub = 5;
        if (n != 4 || number(p, &t[3], false, "a number of pages", &c->count) != VMS_OK ||
            c->count == 0 || c->count > (UINT64_C(1) << 30))
            return fail(p, "expected 'vm %s hostswap N' with N pages from 1 to 1073741824",
                        str(p, &t[1]));
        return VMS_OK;
    }
    if (tok_is(&t[2], "show") && n == 4) {
        if (tok_is(&t[3], "ept") || tok_is(&t[3], "npt") || tok_is(&t[3], "s2"))
            c->vmo.sub = 2;
        else if (tok_is(&t[3], "exits"))
            c->vmo.sub = 3;
        else
            return fail(p, "expected 'vm %s show ept|npt|exits', got '%s'", str(p, &t[1]),
                        str(p, &t[3]));
        return VMS_OK;
    }
    return fail(p,
                "expected 'vm %s spawn PROC [core N]', 'vm %s show ept|npt|exits', 'vm %s vcpu "
                "N core C' or 'vm %s hostswap N'",
                str(p, &t[1]), str(p, &t[1]), str(p, &t[1]), str(p, &t[1]));
}
