/*
 * engine_health.c: the "engine is damaged" state (contract in
 * engine_health.h). One atomic flag, set once and never cleared while the
 * server runs: repairing the file needs the server stopped, and a flag
 * that only goes one way needs no ordering with anything else (a thread
 * that has not seen it yet does what it would have done a moment before).
 */
#include <config.h>

#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "server/engine_health.h"
#include "util/log.h"
#include "util/status.h"

static struct {
    const char *path;
    const char *repair_hint;   /* "{db}" stands for path */
    atomic_bool damaged;
    _Atomic uint64_t corrupt_errors;
    _Atomic int64_t damaged_since;
} EH;

void
engine_health_setup(const char *path, const char *repair_hint)
{
    EH.path = path;
    EH.repair_hint = repair_hint;
    atomic_store(&EH.damaged, false);
    atomic_store(&EH.corrupt_errors, 0);
    atomic_store(&EH.damaged_since, 0);
}

/* hint with every "{db}" replaced by path, cut to fit n */
static void
fill_hint(char *out, size_t n, const char *hint, const char *path)
{
    size_t o = 0;
    while (*hint != '\0' && o + 1 < n) {
        if (strncmp(hint, "{db}", 4) == 0) {
            size_t l = strlen(path);
            if (l > n - 1 - o)
                l = n - 1 - o;
            memcpy(out + o, path, l);
            o += l;
            hint += 4;
        } else {
            out[o++] = *hint++;
        }
    }
    out[o] = '\0';
}

bool
engine_health_report(int rc, const char *who, const char *detail)
{
    if (rc != MCKV_ECORRUPT)
        return false;
    atomic_fetch_add_explicit(&EH.corrupt_errors, 1, memory_order_relaxed);
    if (atomic_load_explicit(&EH.damaged, memory_order_relaxed) ||
        atomic_exchange(&EH.damaged, true))
        return true;
    atomic_store(&EH.damaged_since, (int64_t)time(NULL));
    const char *path = EH.path != NULL ? EH.path : "(unknown)";
    char hint[512];
    fill_hint(hint, sizeof(hint), EH.repair_hint != NULL ? EH.repair_hint
                                  : "see docs/operations.md", path);
    /* once per run: the one line the operator must read */
    log_error("persistence: the database %s is damaged (the %s found it: %s). "
              "Writes are refused from now on (SERVER_ERROR temporary "
              "failure): nothing is acknowledged that cannot be persisted; "
              "reads are answered from memory and from the readable rest of "
              "the file. Stop mckvd and repair the file: %s",
              path, who, detail != NULL ? detail : mckv_strerror(rc), hint);
    return true;
}

bool
engine_health_damaged(void)
{
    return atomic_load_explicit(&EH.damaged, memory_order_relaxed);
}

void
engine_health_counters(struct engine_health_counters *out)
{
    *out = (struct engine_health_counters){
        .damaged = atomic_load(&EH.damaged),
        .corrupt_errors = atomic_load(&EH.corrupt_errors),
        .damaged_since = atomic_load(&EH.damaged_since),
    };
}
