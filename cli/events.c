/*
 * events.c — `--events FILE` for run and replay: the event tap (vmsim/events.h) written
 * as JSON lines, one object per event with its "type" (docs/EVENTS.md). The file is the
 * one the user named ("-": standard output); a write error is reported when it closes.
 */
#include <string.h>

#include "cli.h"

/* The observer: one line per event. */
static void on_event(void *ud, const vms_event *ev)
{
    cli_events *w = ud;
    w->sb.len = 0; /* reuse the buffer: one line at a time */
    if (vms_event_json(ev, &w->sb) != VMS_OK || vms_strbuf_append(&w->sb, "\n", 1) != VMS_OK) {
        w->failed = true;
        return;
    }
    if (fwrite(w->sb.data, 1, w->sb.len, w->f) != w->sb.len)
        w->failed = true;
}

int cli_events_open(cli_events *w, const char *cmd, const char *path, vms_machine *m)
{
    memset(w, 0, sizeof *w);
    w->path = path;
    w->cmd = cmd;
    w->f = strcmp(path, "-") ? fopen(path, "w") : stdout;
    if (!w->f) {
        cli_error(cmd, "%s: cannot create the events file", path);
        return 1;
    }
    vms_strbuf_init(&w->sb, NULL);
    w->m = m;
    vms_machine_set_observer(m, on_event, w);
    return 0;
}

int cli_events_close(cli_events *w)
{
    if (!w->f)
        return 0;
    vms_machine_set_observer(w->m, NULL, NULL);
    bool failed = w->failed;
    if (w->f == stdout ? fflush(w->f) != 0 : fclose(w->f) != 0)
        failed = true;
    w->f = NULL;
    vms_strbuf_free(&w->sb);
    if (failed) {
        cli_error(w->cmd, "%s: write failed", w->path);
        return 1;
    }
    return 0;
}
