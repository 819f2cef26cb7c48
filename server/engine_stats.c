/*
 * engine_stats.c: snapshots of the engine's own statistics (contract in
 * engine_stats.h). The snapshot is kept as "name value\n" text of bounded
 * size: an engine that reports more has the rest left out.
 */
#include <config.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engines/kvstore.h"
#include "server/engine_stats.h"
#include "server/persist_priv.h"

#define ENGINE_STATS_TEXT_MAX 4096

struct engine_stats_text {
    char text[ENGINE_STATS_TEXT_MAX];   /* "name value\n" lines */
    size_t len;
};

static struct {
    pthread_mutex_t lock;
    struct engine_stats_text snap;
    uint64_t taken_us;                  /* 0: none yet */
} ES = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void
collect(void *ctx, const char *name, const char *value)
{
    struct engine_stats_text *t = ctx;
    int n = snprintf(t->text + t->len, sizeof(t->text) - t->len, "%s %s\n",
                     name, value);
    if (n > 0 && (size_t)n < sizeof(t->text) - t->len)
        t->len += (size_t)n;
    else
        t->text[t->len] = '\0';   /* full: the rest is left out */
}

void
engine_stats_take(const struct kvstore_ops *ops, struct kvstore *kv)
{
    struct engine_stats_text *t = malloc(sizeof(*t));
    if (t == NULL || ops->stats == NULL) {
        free(t);
        return;
    }
    t->len = 0;
    t->text[0] = '\0';
    ops->stats(kv, collect, t);
    pthread_mutex_lock(&ES.lock);
    ES.snap = *t;
    ES.taken_us = persist_now_us();
    pthread_mutex_unlock(&ES.lock);
    free(t);
}

void
engine_stats_render(stats_emit_fn emit, void *ctx, const char *engine_name)
{
    struct engine_stats_text *t = malloc(sizeof(*t));
    if (t == NULL)
        return;
    pthread_mutex_lock(&ES.lock);
    *t = ES.snap;
    uint64_t taken = ES.taken_us;
    pthread_mutex_unlock(&ES.lock);
    if (taken == 0)   /* no snapshot: persistence off, or not started */
        emit(ctx, "engine", engine_name);
    char age[32];
    snprintf(age, sizeof(age), "%" PRIu64,
             taken != 0 ? (persist_now_us() - taken) / 1000 : 0);
    emit(ctx, "snapshot_age_ms", age);
    t->text[t->len < sizeof(t->text) ? t->len : sizeof(t->text) - 1] = '\0';
    char *save = NULL;
    for (char *line = strtok_r(t->text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(line, ' ');
        if (sp == NULL)
            continue;
        *sp = '\0';
        emit(ctx, line, sp + 1);
    }
    free(t);
}
