/*
 * fuzz_config.c — libFuzzer target: configuration text (INI, through inih) on arbitrary
 * bytes. A failure must be a parse/value/key error naming the input and a line
 * ("fuzz:3: …"); a success must produce a configuration whose dump loads back to itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmsim/config.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static int msg_names_line(const char *msg)
{
    unsigned long line;
    char c;
    return sscanf(msg, "fuzz:%lu%c", &line, &c) == 2 && c == ':';
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    vms_config c, back;
    vms_err err = {0};
    vms_config_init(&c, NULL, &err);
    vms_status st = vms_config_parse(&c, "fuzz", text, &err);
    if (st == VMS_OK) {
        vms_strbuf d1, d2;
        vms_strbuf_init(&d1, NULL);
        vms_strbuf_init(&d2, NULL);
        vms_config_dump(&c, &d1);
        vms_config_init(&back, "tiny", &err);
        if (vms_config_parse(&back, "dump", vms_strbuf_str(&d1), &err) != VMS_OK) {
            fprintf(stderr, "fuzz: dump does not load back: %s\n", err.msg);
            abort();
        }
        vms_config_dump(&back, &d2);
        if (strcmp(vms_strbuf_str(&d1), vms_strbuf_str(&d2)) != 0) {
            fprintf(stderr, "fuzz: dump round trip differs\n");
            abort();
        }
        vms_strbuf_free(&d1);
        vms_strbuf_free(&d2);
    } else if ((st != VMS_ERR_PARSE && st != VMS_ERR_INVAL && st != VMS_ERR_NOTFOUND) ||
               !msg_names_line(err.msg)) {
        fprintf(stderr, "fuzz: bad failure report: status %d, \"%s\"\n", (int)st, err.msg);
        abort();
    }
    free(text);
    return 0;
}
