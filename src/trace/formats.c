/*
 * formats.c — the trace formats, one row each: its name, how auto-detection recognises
 * it, how a reader starts its parser, and its writer's hooks. Adding a format is its
 * parser (and writer) in a file of its own, one vms_trace_format value and one row here.
 * Rows are indexed by vms_trace_format; detection tries them in order.
 */
#include "trace/trace_impl.h"

/* The magic of a native trace (docs/TRACE_FORMAT.md). */
static const uint8_t native_magic[8] = {0x89, 'V', 'M', 'S', 'T', 'R', '\r', '\n'};

static bool native_sniff(const uint8_t *p, size_t n)
{
    return n >= 8 && memcmp(p, native_magic, 8) == 0;
}

static bool lackey_sniff(const uint8_t *p, size_t n)
{
    return n > 0 && vmsi_lackey_sniff(p, n);
}

static bool dinero_sniff(const uint8_t *p, size_t n)
{
    return n > 0 && vmsi_dinero_sniff(p, n);
}

static const vmsi_trace_wops native_wops = {
    .open = vmsi_native_wopen,
    .string = vmsi_native_wstring,
    .write = vmsi_native_write,
    .close = vmsi_native_wclose,
    .free = vmsi_native_wfree,
};
static const vmsi_trace_wops lackey_wops = {.write = vmsi_lackey_write, .refs_only = true};
static const vmsi_trace_wops dinero_wops = {.write = vmsi_dinero_write, .refs_only = true};

const vmsi_trace_fmt vmsi_trace_formats[] = {
    [VMS_TRACE_AUTO] = {"auto", NULL, NULL, NULL},
    [VMS_TRACE_NATIVE] = {"native", native_sniff, vmsi_native_start, &native_wops},
    [VMS_TRACE_LACKEY] = {"lackey", lackey_sniff, vmsi_lackey_start, &lackey_wops},
    [VMS_TRACE_DINERO] = {"dinero", dinero_sniff, vmsi_dinero_start, &dinero_wops},
    [VMS_TRACE_CHAMPSIM] = {"champsim", vmsi_champsim_sniff, vmsi_champsim_start, NULL},
};

_Static_assert(sizeof vmsi_trace_formats / sizeof vmsi_trace_formats[0] == VMSI_NFORMATS,
               "one row per vms_trace_format");

const vmsi_trace_fmt *vmsi_trace_fmt_of(vms_trace_format f)
{
    return (unsigned)f < VMSI_NFORMATS ? &vmsi_trace_formats[f] : NULL;
}

const char *vmsi_trace_format_list(char *buf, size_t len, vmsi_fmt_pick pick)
{
    size_t n = 0, total = 0, at = 0;
    for (unsigned i = 0; i < VMSI_NFORMATS; i++) {
        const vmsi_trace_fmt *f = &vmsi_trace_formats[i];
        total += pick == VMSI_FMT_ALL || (pick == VMSI_FMT_DETECTED && f->sniff) ||
                 (pick == VMSI_FMT_WRITABLE && f->writer);
    }
    buf[0] = '\0';
    for (unsigned i = 0; i < VMSI_NFORMATS; i++) {
        const vmsi_trace_fmt *f = &vmsi_trace_formats[i];
        if (!(pick == VMSI_FMT_ALL || (pick == VMSI_FMT_DETECTED && f->sniff) ||
              (pick == VMSI_FMT_WRITABLE && f->writer)))
            continue;
        const char *sep = n == 0 ? "" : n + 1 == total ? " or " : ", ";
        int w = snprintf(buf + at, len - at, "%s%s", sep, f->name);
        if (w < 0 || (size_t)w >= len - at)
            break; /* truncated: buf holds what fits */
        at += (size_t)w;
        n++;
    }
    return buf;
}
