/* json.c — the small JSON reader of json.h: recursive descent over the text. */
#include "json.h"

#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *s, *p;
    int depth;
} parser;

static void ws(parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
}

static bool value(parser *ps, cli_json *out);

/* Parse a string at ps->p (the opening quote) into a malloc'd, unescaped copy. */
static char *string(parser *ps)
{
    const char *q = ++ps->p;
    size_t cap = 16, n = 0;
    char *r = malloc(cap);
    for (; r && *q != '"'; q++) {
        char c = *q;
        if ((unsigned char)c < 0x20) {
            free(r);
            return NULL; /* a control character or the end of the text */
        }
        if (c == '\\') {
            q++;
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *e = *q ? strchr(from, *q) : NULL;
            if (e) {
                c = to[e - from];
            } else if (*q == 'u' && strspn(q + 1, "0123456789abcdefABCDEF") >= 4) {
                unsigned long u = strtoul((char[5]){q[1], q[2], q[3], q[4], 0}, NULL, 16);
                c = u < 0x80 ? (char)u : '?';
                q += 4;
            } else {
                free(r);
                return NULL;
            }
        }
        if (n + 2 > cap) {
            char *g = realloc(r, cap *= 2);
            if (!g)
                free(r);
            r = g;
            if (!r)
                return NULL;
        }
        r[n++] = c;
    }
    if (!r)
        return NULL;
    r[n] = '\0';
    ps->p = q + 1;
    return r;
}

/* Append a zeroed node to j's kids; NULL on allocation failure. */
static cli_json *push(cli_json *j, size_t *cap)
{
    if (j->nkids == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        cli_json *k = realloc(j->kids, nc * sizeof *k);
        if (!k)
            return NULL;
        j->kids = k;
        *cap = nc;
    }
    cli_json *k = &j->kids[j->nkids++];
    memset(k, 0, sizeof *k);
    return k;
}

/* An array or object: elements separated by commas up to `close`. */
static bool container(parser *ps, cli_json *out, bool obj)
{
    char close = obj ? '}' : ']';
    size_t cap = 0;
    out->type = obj ? CLI_JSON_OBJ : CLI_JSON_ARR;
    ps->p++;
    ws(ps);
    if (*ps->p == close) {
        ps->p++;
        return true;
    }
    for (;;) {
        cli_json *k = push(out, &cap);
        if (!k)
            return false;
        ws(ps);
        if (obj) {
            if (*ps->p != '"' || !(k->key = string(ps)))
                return false;
            ws(ps);
            if (*ps->p++ != ':')
                return false;
        }
        if (!value(ps, k))
            return false;
        ws(ps);
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p++ != close)
            return false;
        return true;
    }
}

static bool value(parser *ps, cli_json *out)
{
    ws(ps);
    const char *p = ps->p;
    if (*p == '{' || *p == '[') {
        if (++ps->depth > 64)
            return false;
        bool ok = container(ps, out, *p == '{');
        ps->depth--;
        return ok;
    }
    if (*p == '"') {
        out->type = CLI_JSON_STR;
        return (out->str = string(ps)) != NULL;
    }
    static const struct {
        const char *word;
        cli_json_type type;
        double num;
    } words[] = {
        {"null", CLI_JSON_NULL, 0}, {"true", CLI_JSON_BOOL, 1}, {"false", CLI_JSON_BOOL, 0}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strncmp(p, words[i].word, strlen(words[i].word))) {
            out->type = words[i].type;
            out->num = words[i].num;
            ps->p += strlen(words[i].word);
            return true;
        }
    char *end;
    out->type = CLI_JSON_NUM;
    out->num = strtod(p, &end);
    if (end == p || !(*p == '-' || (*p >= '0' && *p <= '9')))
        return false;
    ps->p = end;
    return true;
}

static void release(cli_json *j)
{
    for (size_t i = 0; i < j->nkids; i++)
        release(&j->kids[i]);
    free(j->kids);
    free(j->str);
    free(j->key);
}

cli_json *cli_json_parse(const char *text, size_t *where)
{
    parser ps = {text, text, 0};
    cli_json *j = calloc(1, sizeof *j);
    bool ok = j && value(&ps, j);
    if (ok) {
        ws(&ps);
        ok = *ps.p == '\0';
    }
    if (!ok) {
        if (where)
            *where = (size_t)(ps.p - text);
        cli_json_free(j);
        return NULL;
    }
    return j;
}

void cli_json_free(cli_json *j)
{
    if (!j)
        return;
    release(j);
    free(j);
}

const cli_json *cli_json_get(const cli_json *j, const char *key)
{
    if (!j || j->type != CLI_JSON_OBJ)
        return NULL;
    for (size_t i = 0; i < j->nkids; i++)
        if (!strcmp(j->kids[i].key, key))
            return &j->kids[i];
    return NULL;
}

const cli_json *cli_json_path(const cli_json *j, const char *path)
{
    char name[128];
    while (j && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof name)
            return NULL;
        memcpy(name, path, n);
        name[n] = '\0';
        j = cli_json_get(j, name);
        path += n + (path[n] == '.');
    }
    return j;
}

bool cli_json_num(const cli_json *j, const char *path, double *out)
{
    const cli_json *v = cli_json_path(j, path);
    if (!v || v->type != CLI_JSON_NUM)
        return false;
    *out = v->num;
    return true;
}
