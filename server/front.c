/*
 * front.c: what the three front ends share: a connection's command
 * context (its admission and fetched-value answers, through function
 * pointers, so the command core never sees the connection).
 */
#include <config.h>

#include <string.h>

#include "protocol/proto_text.h"
#include "server/conn.h"
#include "server/front.h"

static bool
env_admit_write(void *owner)
{
    return conn_admit_write(owner);
}

static struct item *
env_fetched(void *owner, const char *key, uint8_t nkey)
{
    return conn_fetched(owner, key, nkey);
}

void
front_ctx(struct conn *c, struct cmd_ctx *ctx, struct cmd_env *env)
{
    env->owner = c;
    env->admit_write = env_admit_write;
    env->fetched = env_fetched;
    ctx->ts = c->owner->stats;
    ctx->env = env;
}

void
front_need_fetch(struct conn *c, const char *key, uint8_t nkey)
{
    conn_need_fetch(c, key, nkey);
}

unsigned
front_words(const char *s, size_t len, const char **w, size_t *n, unsigned max)
{
    unsigned count = 0;
    size_t i = 0;
    while (i < len && count < max) {
        while (i < len && s[i] == ' ')
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && s[i] != ' ')
            i++;
        w[count] = s + start;
        n[count++] = i - start;
    }
    return count;
}

void
front_text_stat_emit(void *ctx, const char *name, const char *value)
{
    struct conn *c = ctx;
    size_t need = strlen(name) + strlen(value) + 8;
    char *p = conn_out_reserve(c, need);
    if (p == NULL)
        return;
    conn_out_commit(c, proto_text_compose_stat(p, need, name, value));
}
