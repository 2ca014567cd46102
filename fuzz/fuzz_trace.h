/*
 * fuzz_trace.h — the body shared by the trace parsers' fuzz targets (fuzz_<parser>.c).
 *
 * One input is read to its end through the public reader with a fixed format; the
 * target checks what the library promises on any input: no crash, no hang, no leak (ASan),
 * every event well-formed, and every failure a parse/unsupported status whose message
 * names the input and a line ("fuzz:12: …") or a byte offset ("… byte N …").
 * Violations abort, which libFuzzer and the corpus replay (replay.c) both report.
 */
#ifndef VMSIM_FUZZ_TRACE_H
#define VMSIM_FUZZ_TRACE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmsim/trace.h"

/* Whether msg names the input and a line or a byte offset. */
static int fuzz_msg_ok(const char *msg)
{
    unsigned long line;
    char c;
    if (strncmp(msg, "fuzz", 4) != 0)
        return 0;
    if (sscanf(msg, "fuzz:%lu%c", &line, &c) == 2 && c == ':')
        return 1;
    return strstr(msg, "byte ") != NULL;
}

static int fuzz_trace_one(const unsigned char *data, size_t size, vms_trace_format fmt)
{
    vms_trace_reader *r;
    vms_err err = {0};
    if (vms_trace_reader_open_mem(data, size, "fuzz", fmt, NULL, &r, &err) == VMS_OK) {
        vms_trace_event ev;
        while (vms_trace_read(r, &ev, &err)) {
            if (ev.type >= VMS_TEV_NTYPES ||
                (ev.type == VMS_TEV_ACCESS && (ev.access.size == 0 || ev.access.kind > 3))) {
                fprintf(stderr, "fuzz: bad event type %u\n", ev.type);
                abort();
            }
            if (ev.type == VMS_TEV_MAP && ev.map.path && !vms_trace_reader_path(r, ev.map.path))
                abort();
        }
        vms_trace_reader_close(r);
    }
    if (err.status != VMS_OK &&
        ((err.status != VMS_ERR_PARSE && err.status != VMS_ERR_UNSUPPORTED) ||
         !fuzz_msg_ok(err.msg))) {
        fprintf(stderr, "fuzz: bad failure report: status %d, \"%s\"\n", (int)err.status, err.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#endif
