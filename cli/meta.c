/*
 * meta.c — what a result says about what made it: the vmsim version, the full effective
 * configuration, the input's name and SHA-256, and the seed (in every --stats json
 * object), and the overrides against the preset (in the text summaries).
 */
#include <string.h>

#include "cli.h"
#include "vmsim/hash.h"
#include "vmsim/version.h"

void cli_print_version(FILE *f)
{
    const char *build = vms_version_build();
    fprintf(f, "vmsim %s", vms_version());
    if (build[0])
        fprintf(f, " (git %s)", build);
    fputc('\n', f);
}

void cli_input_init(cli_input *in, const char *kind, const char *path)
{
    memset(in, 0, sizeof *in);
    in->kind = kind;
    in->name = path;
    if (path && strcmp(path, "-") != 0)
        in->hashed = vms_sha256_file(path, in->sha256, NULL) == VMS_OK;
}

void cli_input_text(cli_input *in, const char *kind, const char *name, const char *text)
{
    memset(in, 0, sizeof *in);
    in->kind = kind;
    in->name = name;
    vms_sha256_hex(text, strlen(text), in->sha256);
    in->hashed = true;
}

void cli_json_meta(vms_strbuf *sb, const vms_config *c, const cli_input *in)
{
    vms_strbuf_printf(sb, "\"version\":\"%s\",\"build\":", vms_version());
    vms_strbuf_json_str(sb, vms_version_build());
    vms_strbuf_printf(sb, ",\"config\":");
    vms_config_json(c, sb);
    vms_strbuf_printf(sb, ",\"input\":{\"kind\":\"%s\",\"name\":", in->kind);
    vms_strbuf_json_str(sb, in->name ? in->name : "");
    if (in->hashed)
        vms_strbuf_printf(sb, ",\"sha256\":\"%s\"}", in->sha256);
    else
        vms_strbuf_printf(sb, ",\"sha256\":null}");
    vms_strbuf_printf(sb, ",\"seed\":%llu,", (unsigned long long)c->machine.seed);
}

/* The preset c started from: its machine's name when that is a preset, else skylake. */
static const char *base_preset(const vms_config *c, vms_config *base)
{
    const char *name = c->machine.name;
    if (name && vms_config_init(base, name, NULL) == VMS_OK)
        return name;
    vms_config_init(base, NULL, NULL);
    return "skylake";
}

void cli_overrides(const vms_config *c, vms_strbuf *out)
{
    vms_config base;
    const char *preset = base_preset(c, &base);
    vms_strbuf a, b;
    vms_strbuf_init(&a, NULL);
    vms_strbuf_init(&b, NULL);
    /* tlb.mode=software lists more keys: compare with the preset in that mode, so only
     * what differs from its software-TLB defaults shows. */
    bool sw = c->machine.mmu.swtlb.on && !base.machine.mmu.swtlb.on;
    base.machine.mmu.swtlb.on = c->machine.mmu.swtlb.on;
    vms_config_dump(c, &a);
    vms_config_dump(&base, &b);
    vms_strbuf_printf(out, "preset %s", preset);
    unsigned n = 0;
    if (sw)
        vms_strbuf_printf(out, "%stlb.mode=software", n++ ? " " : ", overrides ");
    /* Both dumps list their keys in the same order, c's perhaps more of them (the
     * software-TLB keys are listed only in software mode): compare line by line, and a
     * key the preset's dump does not have at this point is an override of its own. */
    for (const char *p = vms_strbuf_str(&a), *q = vms_strbuf_str(&b); *p;) {
        size_t lp = strcspn(p, "\n"), lq = strcspn(q, "\n");
        size_t kp = strcspn(p, "="), kq = strcspn(q, "=");
        bool extra = !*q || kp != kq || memcmp(p, q, kp) != 0;
        if (*p != '#' && (extra || lp != lq || memcmp(p, q, lp) != 0)) {
            const char *eq = memchr(p, '=', lp);
            size_t klen = eq ? (size_t)(eq - p) - 1 : lp;
            size_t vlen = eq ? lp - klen - 3 : 0, clen = 0;
            /* A trailing comment ("  ; 32 entries = 8 sets x 4 ways", a TLB's or PWC's
             * geometry) follows in parentheses: `tlb.l2=4K:1536x12` shows its 18432
             * entries (issue 16.17). */
            for (size_t i = 0; eq && i + 4 <= vlen; i++)
                if (memcmp(eq + 2 + i, "  ; ", 4) == 0) {
                    clen = vlen - i - 4;
                    vlen = i;
                    break;
                }
            vms_strbuf_printf(out, "%s%.*s=%.*s", n++ ? " " : ", overrides ", (int)klen, p,
                              (int)vlen, eq ? eq + 2 : "");
            if (clen)
                vms_strbuf_printf(out, " (%.*s)", (int)clen, eq + 2 + vlen + 4);
        }
        p += lp + (p[lp] == '\n');
        if (!extra)
            q += lq + (q[lq] == '\n');
    }
    if (!n)
        vms_strbuf_printf(out, ", no overrides");
    vms_strbuf_free(&a);
    vms_strbuf_free(&b);
}
