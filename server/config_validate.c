/*
 * config_validate.c: the rules a loaded configuration must meet beyond each
 * key's own range (config_validate): memcached 1.6's cross-key checks, with
 * its words where it has them.
 */
/* Angle brackets on purpose: from server/, "config.h" would find this
 * module's own server/config.h first instead of the autoconf header. */
#include <config.h>

#include <inttypes.h>
#include <string.h>
#include <sys/un.h>

#include "server/config_priv.h"
#include "util/status.h"

/* sasl and auth_file: no protocol may be open where the other is asked
 * for (memcached's rules; with both, each protocol authenticates its own
 * way). */
static int
config_validate_auth(const struct config *cfg, char *err, size_t errlen)
{
    bool ascii_auth = cfg->auth_file[0] != '\0';
#ifndef HAVE_SASL
    if (cfg->sasl) {
        config_set_err(err, errlen, "sasl: this mckvd was built without SASL "
                       "(configure found no libsasl2-dev)");
        return MCKV_EINVAL;
    }
#endif
    if (cfg->sasl && !ascii_auth && strcmp(cfg->protocol, "ascii") == 0) {
        config_set_err(err, errlen, "sasl: the ascii protocol cannot be "
                       "allowed while using SASL (set auth_file too, or "
                       "protocol = binary)");
        return MCKV_EINVAL;
    }
    if (ascii_auth && !cfg->sasl && strcmp(cfg->protocol, "binary") == 0) {
        config_set_err(err, errlen, "auth_file: the binary protocol cannot be "
                       "allowed while using ascii authentication (set sasl "
                       "too, or protocol = ascii)");
        return MCKV_EINVAL;
    }
    return MCKV_OK;
}

/* Cross-key rules, as memcached 1.6 enforces them. 0, or MCKV_EINVAL with
 * "key: reason" in err. Any thread that owns cfg. */
int
config_validate(const struct config *cfg, char *err, size_t errlen)
{
    /* The rules with their own words first, then the table's ranges. */
    if (cfg->udp_port != 0) {
        config_set_err(err, errlen, "udp_port: UDP is not supported; use 0");
        return MCKV_EINVAL;
    }
    if (cfg->item_size_max < 1024) {
        config_set_err(err, errlen, "item_size_max: %" PRIu64
                       " is below the minimum of 1024 bytes",
                       cfg->item_size_max);
        return MCKV_EINVAL;
    }
    for (int i = 0; i < OPT_COUNT; i++) {
        const struct opt_desc *o = &opt_table[i];
        uint64_t v;

        if (o->type == OPT_STR || o->type == OPT_BOOL)
            continue;
        v = *(const uint64_t *)config_field_const(cfg, o);
        if (v < o->min || v > o->max) {
            config_set_err(err, errlen, "%s: %" PRIu64 " is not between %"
                           PRIu64 " and %" PRIu64, o->name, v, o->min, o->max);
            return MCKV_EINVAL;
        }
    }
    /* memcached: "Initial hashtable multiplier of N is too low" */
    if (cfg->hashpower_init > 0 && cfg->hashpower_init < 12) {
        config_set_err(err, errlen, "hashpower_init: %" PRIu64
                       " is too low: 12..32, or 0 to grow as needed",
                       cfg->hashpower_init);
        return MCKV_EINVAL;
    }
    if (strlen(cfg->unix_socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        config_set_err(err, errlen, "unix_socket: %s: longer than %zu bytes",
                       cfg->unix_socket,
                       sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        return MCKV_EINVAL;
    }
    /* memcached: "Cannot set item size limit higher than 1/2 of memory
     * max." */
    if (cfg->item_size_max > cfg->memory_limit * 1024 * 1024 / 2) {
        config_set_err(err, errlen, "item_size_max: %" PRIu64
                       " bytes is more than half of memory_limit (%" PRIu64
                       " MB)", cfg->item_size_max, cfg->memory_limit);
        return MCKV_EINVAL;
    }
#ifdef HAVE_TLS
    /* memcached fails later, at "Error loading the certificate chain" */
    if (cfg->ssl_enabled && cfg->ssl_chain_cert[0] == '\0') {
        config_set_err(err, errlen, "ssl_enabled: needs ssl_chain_cert "
                       "(-o ssl_chain_cert=FILE)");
        return MCKV_EINVAL;
    }
#endif
    return config_validate_auth(cfg, err, errlen);
}

const char *
config_protocol(const struct config *cfg)
{
    bool ascii_auth = cfg->auth_file[0] != '\0';
    if (strcmp(cfg->protocol, "auto") == 0 && cfg->sasl != ascii_auth)
        return cfg->sasl ? "binary" : "ascii";
    return cfg->protocol;
}
