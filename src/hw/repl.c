/*
 * repl.c — the registry of built-in replacement policies (repl.h).
 *
 * Each policy lives in its own file (repl_<name>.c) and defines one const
 * vms_repl_policy named vmsi_repl_<name>. Adding a policy is that file plus one
 * X(<name>) line in VMSI_REPL_POLICIES below: the macro both declares the object and
 * puts it in the table, in listing order.
 */
#include "vmsim/repl.h"

#include <string.h>

#define VMSI_REPL_POLICIES(X)                                                                      \
    X(lru)                                                                                         \
    X(plru)                                                                                        \
    X(fifo)                                                                                        \
    X(random)

#define DECLARE(n) extern const vms_repl_policy vmsi_repl_##n;
VMSI_REPL_POLICIES(DECLARE)
#undef DECLARE

#define ENTRY(n) &vmsi_repl_##n,
static const vms_repl_policy *const policies[] = {VMSI_REPL_POLICIES(ENTRY)};
#undef ENTRY

#define NPOLICIES ((unsigned)(sizeof policies / sizeof policies[0]))

/* The built-in policy named `name` (exact, case-sensitive match), or NULL. */
const vms_repl_policy *vms_repl_find(const char *name)
{
    if (!name)
        return NULL;
    for (unsigned i = 0; i < NPOLICIES; i++)
        if (strcmp(policies[i]->name, name) == 0)
            return policies[i];
    return NULL;
}

/* How many built-in policies there are. */
unsigned vms_repl_count(void)
{
    return NPOLICIES;
}

/* The i-th built-in policy, or NULL when i >= vms_repl_count(). */
const vms_repl_policy *vms_repl_get(unsigned i)
{
    return i < NPOLICIES ? policies[i] : NULL;
}
