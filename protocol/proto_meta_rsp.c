/*
 * proto_meta_rsp.c: the reply lines of memcached's meta commands, composed
 * from the request (which flags, in which order) and what the processor
 * found (struct meta_rsp). Which flag each command writes for each status,
 * and where W, X and Z go, follow memcached 1.6.18's process_m*_command()
 * and _finalize_mset(); see proto_meta.h for the table.
 */
#include <config.h>

#include <string.h>

#include "protocol/proto_meta.h"

static char *
put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

static char *
put_i64(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return put_u64(p, 0 - (uint64_t)v);
    }
    return put_u64(p, (uint64_t)v);
}

static char *
put_flag_u64(char *p, char flag, uint64_t v)
{
    *p++ = ' ';
    *p++ = flag;
    return put_u64(p, v);
}

/* memcached's META_KEY(): " k<key>", or " k<base64> b" for a binary key. */
static char *
put_key(char *p, const char *key, uint8_t nkey, bool binary)
{
    *p++ = ' ';
    *p++ = 'k';
    if (!binary) {
        memcpy(p, key, nkey);
        return p + nkey;
    }
    p += proto_meta_base64_encode(key, nkey, p,
                                  PROTO_META_B64_LEN(PROTO_KEY_MAX));
    memcpy(p, " b", 2);
    return p + 2;
}

size_t
proto_meta_compose_rsp(char *out, const struct meta_req *req,
                       enum meta_status status, const struct meta_rsp *rsp)
{
    static const char codes[][2] = {
        [META_RSP_VA] = { 'V', 'A' }, [META_RSP_HD] = { 'H', 'D' },
        [META_RSP_NF] = { 'N', 'F' }, [META_RSP_NS] = { 'N', 'S' },
        [META_RSP_EX] = { 'E', 'X' }, [META_RSP_EN] = { 'E', 'N' },
        [META_RSP_MN] = { 'M', 'N' },
    };
    char *p = out;

    memcpy(p, codes[status], 2);
    p += 2;
    if (status == META_RSP_VA) {
        *p++ = ' ';
        p = put_u64(p, rsp != NULL ? rsp->vlen : 0);
    }

    /* mg and ma describe the item only when they have one (VA, HD). */
    bool item = rsp != NULL &&
                (status == META_RSP_VA || status == META_RSP_HD) &&
                (req->cmd == META_MG || req->cmd == META_MA);
    bool mg_item = item && req->cmd == META_MG;
    int64_t ttl = item ? rsp->ttl : -1;
    const char *key = req->key;
    uint8_t nkey = req->nkey;
    bool key_binary = req->key_binary;
    if (rsp != NULL && rsp->key != NULL) {
        key = rsp->key;
        nkey = rsp->nkey;
        key_binary = rsp->key_binary;
    }

    for (unsigned i = 0; status != META_RSP_MN && i < req->nret_order; i++) {
        switch (req->ret_order[i]) {
        case 'T':
            if (item)
                ttl = rsp->ttl_after_set;
            break;
        case 'N':
            if (item && rsp->vivified)
                ttl = rsp->ttl_after_vivify;
            break;
        case 's':
            if (mg_item)
                p = put_flag_u64(p, 's', rsp->vlen);
            break;
        case 't':
            if (item) {
                *p++ = ' ';
                *p++ = 't';
                p = put_i64(p, ttl);
            }
            break;
        case 'c':
            /* ms writes c on every status: 0 unless stored */
            if (item || req->cmd == META_MS)
                p = put_flag_u64(p, 'c', rsp != NULL ? rsp->cas : 0);
            break;
        case 'f':
            if (mg_item)
                p = put_flag_u64(p, 'f', rsp->client_flags);
            break;
        case 'l':
            if (mg_item)
                p = put_flag_u64(p, 'l', rsp->last_access);
            break;
        case 'h':
            if (mg_item) {
                memcpy(p, rsp->hit_before ? " h1" : " h0", 3);
                p += 3;
            }
            break;
        case 'O':
            *p++ = ' ';
            *p++ = 'O';
            memcpy(p, req->opaque, req->nopaque);
            p += req->nopaque;
            break;
        case 'k':
            p = put_key(p, key, nkey, key_binary);
            break;
        default:
            break;
        }
    }
    /* Z before W, so a client never sees both; X in between. */
    if (mg_item) {
        if (rsp->won_by_other) {
            memcpy(p, " Z", 2);
            p += 2;
        }
        if (rsp->stale) {
            memcpy(p, " X", 2);
            p += 2;
        }
        if (rsp->won) {
            memcpy(p, " W", 2);
            p += 2;
        }
    }
    *p++ = '\r';
    *p++ = '\n';
    return (size_t)(p - out);
}

size_t
proto_meta_compose_debug(char *out, const char *key, uint8_t nkey,
                         bool key_binary, const struct meta_debug *d)
{
    char *p = out;

    memcpy(p, "ME ", 3);
    p += 3;
    if (key_binary) {
        p += proto_meta_base64_encode(key, nkey, p,
                                      PROTO_META_B64_LEN(PROTO_KEY_MAX));
    } else {
        memcpy(p, key, nkey);
        p += nkey;
    }
    memcpy(p, " exp=", 5);
    p = put_i64(p + 5, d->exp);
    memcpy(p, " la=", 4);
    p = put_u64(p + 4, d->last_access);
    memcpy(p, " cas=", 5);
    p = put_u64(p + 5, d->cas);
    memcpy(p, d->fetched ? " fetch=yes" : " fetch=no", d->fetched ? 10 : 9);
    p += d->fetched ? 10 : 9;
    memcpy(p, " cls=", 5);
    p = put_u64(p + 5, d->slab_class);
    memcpy(p, " size=", 6);
    p = put_u64(p + 6, d->total_size);
    *p++ = '\r';
    *p++ = '\n';
    return (size_t)(p - out);
}
