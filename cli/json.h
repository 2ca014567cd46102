/*
 * json.h — a small JSON reader for the program's own results (`vmsim sweep merge` and
 * `vmsim plot` read the JSON lines that sweeps write). It parses one document into a
 * tree of nodes; objects keep their members in order. Not a general-purpose library:
 * numbers are doubles, strings are unescaped (\uXXXX below 0x80 only; others become
 * '?'), depth is limited to 64.
 */
#ifndef VMSIM_CLI_JSON_H
#define VMSIM_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>

typedef enum cli_json_type {
    CLI_JSON_NULL,
    CLI_JSON_BOOL,
    CLI_JSON_NUM,
    CLI_JSON_STR,
    CLI_JSON_ARR,
    CLI_JSON_OBJ
} cli_json_type;

typedef struct cli_json {
    cli_json_type type;
    double num;            /* NUM; BOOL as 0/1 */
    char *str;             /* STR */
    char *key;             /* the member's name inside an object */
    struct cli_json *kids; /* ARR/OBJ elements, nkids of them */
    size_t nkids;
} cli_json;

/* Parse text; NULL on malformed input (then *where is the byte offset of the error). */
cli_json *cli_json_parse(const char *text, size_t *where);
void cli_json_free(cli_json *j);

/* Member `key` of object j (exact name; NULL when absent or j is not an object). */
const cli_json *cli_json_get(const cli_json *j, const char *key);
/* Follow a dotted path of member names ("tlb.l1d.misses"); NULL when any is absent. */
const cli_json *cli_json_path(const cli_json *j, const char *path);
/* The number at path, or false when absent or not a number. */
bool cli_json_num(const cli_json *j, const char *path, double *out);

#endif
