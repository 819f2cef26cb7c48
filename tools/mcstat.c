/*
 * mcstat.c: the statistics client for mckv (and any memcached 1.6).
 *
 * Speaks the binary protocol only, over TCP or TLS (tools/mcconn): an
 * optional SASL exchange (libsasl2), then one STAT request per group; the
 * server answers one packet per statistic (key = name, value = value) and
 * ends with a packet whose key is empty. Every group is fetched into memory
 * before anything is printed, so a failing request leaves stdout empty and
 * the exit status tells what went wrong (see enum mcstat_exit; the same
 * list is in mcstat.1). Watch mode (-w) is in mcstat_watch.c.
 *
 * Packets are composed and parsed with protocol/proto_bin; nothing else of
 * mckv is used.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/mcstat.h"

#define IO_TIMEOUT_S 5
#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT "11211"

/* Long options without a short one. */
enum { OPT_TLS = 256, OPT_CAFILE, OPT_CERT, OPT_KEY };

static void
usage(FILE *out)
{
    fprintf(out,
"Usage: mcstat [OPTION]... [GROUP]...\n"
"Print the statistics of a memcached-compatible server (binary protocol).\n"
"\n"
"GROUP is a stats group: settings, items, slabs, conns, kvstore, engine,\n"
"timings, reset, or general (the default, also when no GROUP is given).\n"
"\n"
"  -h, --host=HOST[:PORT]   server (default " DEFAULT_HOST ":" DEFAULT_PORT
"; [v6addr]:PORT)\n"
"  -p, --port=PORT          port (overrides a port given with -h)\n"
"  -u, --user=USER          authenticate with SASL as USER (the mechanism\n"
"                           is the best of the server's list, e.g. PLAIN)\n"
"  -P, --password=PASSWORD  SASL password (default: $MCSTAT_PASSWORD)\n"
"      --tls                connect with TLS; the server's certificate must\n"
"                           verify and name HOST\n"
"      --cafile=FILE        trust the CAs in FILE (PEM), not the system's\n"
"      --cert=FILE          client certificate (PEM), for servers that ask\n"
"      --key=FILE           its private key (default: in the --cert file)\n"
"  -j, --json               print one JSON object {\"group\": {...}, ...}\n"
"  -w, --watch=SECONDS      print rates of the general and kvstore counters\n"
"                           every SECONDS until SIGINT or SIGTERM\n"
"  -n, --count=COUNT        with -w: stop after COUNT intervals\n"
"  -V, --version            print the version and exit\n"
"      --help               print this help and exit\n"
"\n"
"Exit status: 0 ok, 1 usage error, 2 cannot connect, 3 authentication\n"
"failed, 4 unknown group, 5 protocol error or timeout, 6 TLS failed.\n");
}

static int
usage_error(const char *fmt, const char *arg)
{
    fputs("mcstat: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (see mcstat --help)\n", stderr);
    return MCSTAT_EXIT_USAGE;
}

static void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        fputs("mcstat: out of memory\n", stderr);
        exit(MCSTAT_EXIT_PROTO);
    }
    return q;
}

static char *
xmemdup(const char *s, size_t n)
{
    char *d = xrealloc(NULL, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* ---- command line -------------------------------------------------------- */

static bool
valid_port(const char *s)
{
    char *end;
    unsigned long v;
    if (s[0] < '0' || s[0] > '9')
        return false;
    errno = 0;
    v = strtoul(s, &end, 10);
    return errno == 0 && *end == '\0' && v >= 1 && v <= 65535;
}

/* Splits "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 literal. */
static int
parse_host(struct options *o, const char *arg)
{
    const char *port = NULL;
    size_t hlen;
    if (arg[0] == '[') {
        const char *close = strchr(arg, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return usage_error("bad host '%s'", arg);
        free(o->host);
        o->host = xmemdup(arg + 1, (size_t)(close - arg - 1));
        if (close[1] == ':')
            port = close + 2;
    } else {
        const char *colon = strchr(arg, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            hlen = (size_t)(colon - arg);
            port = colon + 1;
        } else {
            hlen = strlen(arg);   /* no port, or an IPv6 literal */
        }
        free(o->host);
        o->host = xmemdup(arg, hlen);
    }
    if (o->host[0] == '\0')
        return usage_error("bad host '%s'", arg);
    if (port != NULL) {
        if (!valid_port(port))
            return usage_error("bad port in '%s'", arg);
        free(o->port);
        o->port = xmemdup(port, strlen(port));
    }
    return MCSTAT_EXIT_OK;
}

/* Returns -1 to exit 0 (--help, -V), else an exit code (0: go on). */
static int
parse_options(struct options *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "host", required_argument, NULL, 'h' },
        { "port", required_argument, NULL, 'p' },
        { "user", required_argument, NULL, 'u' },
        { "password", required_argument, NULL, 'P' },
        { "json", no_argument, NULL, 'j' },
        { "watch", required_argument, NULL, 'w' },
        { "count", required_argument, NULL, 'n' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'H' },
        { "tls", no_argument, NULL, OPT_TLS },
        { "cafile", required_argument, NULL, OPT_CAFILE },
        { "cert", required_argument, NULL, OPT_CERT },
        { "key", required_argument, NULL, OPT_KEY },
        { NULL, 0, NULL, 0 },
    };
    const char *port_opt = NULL;
    bool have_count = false;
    int ch, rc;
    char *end;

    o->host = xmemdup(DEFAULT_HOST, strlen(DEFAULT_HOST));
    o->port = xmemdup(DEFAULT_PORT, strlen(DEFAULT_PORT));
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+:h:p:u:P:jw:n:V", longopts,
                             NULL)) != -1) {
        switch (ch) {
        case 'h':
            if ((rc = parse_host(o, optarg)) != MCSTAT_EXIT_OK)
                return rc;
            break;
        case 'p':
            if (!valid_port(optarg))
                return usage_error("bad port '%s'", optarg);
            port_opt = optarg;
            break;
        case 'u':
            o->user = optarg;
            break;
        case 'P':
            o->password = optarg;
            break;
        case 'j':
            o->json = true;
            break;
        case OPT_TLS:
            o->tls = true;
            break;
        case OPT_CAFILE:
            o->cafile = optarg;
            break;
        case OPT_CERT:
            o->cert = optarg;
            break;
        case OPT_KEY:
            o->key = optarg;
            break;
        case 'w':
            errno = 0;
            o->watch_s = strtod(optarg, &end);
            if (errno != 0 || end == optarg || *end != '\0' ||
                !(o->watch_s >= 0.1 && o->watch_s <= 86400))
                return usage_error("bad interval '%s' (0.1 to 86400 s)",
                                   optarg);
            break;
        case 'n':
            errno = 0;
            o->count = strtoul(optarg, &end, 10);
            if (errno != 0 || optarg[0] < '0' || optarg[0] > '9' ||
                *end != '\0' || o->count == 0)
                return usage_error("bad count '%s'", optarg);
            have_count = true;
            break;
        case 'V':
            printf("mcstat (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
            return -1;
        case 'H':
            usage(stdout);
            return -1;
        case ':':
            return usage_error("option '%s' needs an argument",
                               argv[optind - 1]);
        default: {
            char opt[3] = { '-', (char)optopt, '\0' };
            return usage_error("unknown option '%s'",
                               optopt != 0 ? opt : argv[optind - 1]);
        }
        }
    }
    if (port_opt != NULL) {
        free(o->port);
        o->port = xmemdup(port_opt, strlen(port_opt));
    }
    if (o->user == NULL && o->password != NULL)
        return usage_error("%s", "-P needs -u");
    if (o->user != NULL && o->password == NULL)
        o->password = getenv("MCSTAT_PASSWORD");
    if (o->user != NULL && o->password == NULL)
        return usage_error("%s", "-u needs -P (or $MCSTAT_PASSWORD)");
    if (o->user != NULL && strlen(o->user) + strlen(o->password) > 1000)
        return usage_error("%s", "user name and password too long");
    if (have_count && o->watch_s == 0)
        return usage_error("%s", "-n needs -w");
    if (!o->tls && (o->cafile != NULL || o->cert != NULL || o->key != NULL))
        return usage_error("%s", "--cafile, --cert and --key need --tls");
    if (o->key != NULL && o->cert == NULL)
        return usage_error("%s", "--key needs --cert");
    o->groups = argv + optind;
    o->ngroups = argc - optind;
    if (o->watch_s > 0 && o->ngroups > 0)
        return usage_error("no GROUP with -w (it watches general%s)",
                           " and kvstore");
    for (int i = 0; i < o->ngroups; i++) {
        if (strlen(o->groups[i]) > PROTO_KEY_MAX)
            return usage_error("group name too long: '%.40s...'",
                               o->groups[i]);
    }
    return MCSTAT_EXIT_OK;
}

/* ---- stats --------------------------------------------------------------- */

void
mcstat_group_clear(struct stat_group *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->pairs[i].name);
        free(g->pairs[i].value);
    }
    g->n = 0;
}

/* The exit status for a failed mcconn call, whose line it prints. */
static int
conn_failed(const char *error, int status)
{
    fprintf(stderr, "mcstat: %s\n", error);
    switch (status) {
    case MCCONN_ECONNECT:
        return MCSTAT_EXIT_CONNECT;
    case MCCONN_ETLS:
        return MCSTAT_EXIT_TLS;
    case MCCONN_EAUTH:
        return MCSTAT_EXIT_AUTH;
    default:
        return MCSTAT_EXIT_PROTO;
    }
}

int
mcstat_fetch_group(struct mcconn *c, struct stat_group *g)
{
    struct bin_rsp rsp;
    int rc = mcconn_bin_send(c, BIN_OP_STAT, g->key, strlen(g->key), NULL, 0);

    mcstat_group_clear(g);
    while (rc == MCCONN_OK) {
        rc = mcconn_bin_recv(c, BIN_OP_STAT, &rsp);
        if (rc != MCCONN_OK)
            break;
        if (rsp.status == BIN_STATUS_KEY_ENOENT && g->n == 0)
            return MCSTAT_EXIT_GROUP;
        if (rsp.status == BIN_STATUS_AUTH_ERROR) {
            fprintf(stderr, "mcstat: %s: the server requires "
                    "authentication (use -u and -P)\n", c->where);
            return MCSTAT_EXIT_AUTH;
        }
        if (rsp.status != BIN_STATUS_SUCCESS) {
            fprintf(stderr, "mcstat: %s: stats %s: error status 0x%02x\n",
                    c->where, g->title, rsp.status);
            return MCSTAT_EXIT_PROTO;
        }
        if (rsp.keylen == 0)
            return MCSTAT_EXIT_OK;           /* the terminating packet */
        if (g->n == g->cap) {
            g->cap = g->cap ? 2 * g->cap : 64;
            g->pairs = xrealloc(g->pairs, g->cap * sizeof(*g->pairs));
        }
        g->pairs[g->n++] = (struct stat_pair){
            .name = xmemdup(rsp.key, rsp.keylen), .name_len = rsp.keylen,
            .value = xmemdup(rsp.value, rsp.vlen), .value_len = rsp.vlen,
        };
    }
    return conn_failed(c->error, rc);
}

static void
print_text(FILE *out, const struct stat_group *groups, int n)
{
    for (int i = 0; i < n; i++) {
        if (i > 0)
            fputc('\n', out);
        for (size_t j = 0; j < groups[i].n; j++) {
            const struct stat_pair *p = &groups[i].pairs[j];
            fputs("STAT ", out);
            fwrite(p->name, 1, p->name_len, out);
            fputc(' ', out);
            fwrite(p->value, 1, p->value_len, out);
            fputc('\n', out);
        }
    }
}

/* Length of the valid UTF-8 sequence at s[0..n) (no overlongs, surrogates
 * or code points past U+10FFFF), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4;
    else
        return 0;
    if (s[0] == 0xe0)
        lo = 0xa0;
    else if (s[0] == 0xed)
        hi = 0x9f;
    else if (s[0] == 0xf0)
        lo = 0x90;
    else if (s[0] == 0xf4)
        hi = 0x8f;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    }
    return len;
}

/* Writes s as a JSON string; bytes that are not UTF-8 become U+FFFD. */
static void
json_string(FILE *out, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', out);
    for (size_t i = 0; i < n;) {
        size_t len = utf8_len(s + i, n - i);
        if (len == 0) {
            fputs("\\ufffd", out);
            i++;
            continue;
        }
        if (s[i] == '"' || s[i] == '\\')
            fprintf(out, "\\%c", s[i]);
        else if (s[i] == '\n')
            fputs("\\n", out);
        else if (s[i] == '\t')
            fputs("\\t", out);
        else if (s[i] == '\r')
            fputs("\\r", out);
        else if (s[i] < 0x20)
            fprintf(out, "\\u%04x", s[i]);
        else
            fwrite(s + i, 1, len, out);
        i += len;
    }
    fputc('"', out);
}

/* An integer or decimal number in JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?
 * (so "007", "1e5", "+1", ".5" and "1." stay strings). */
static bool
json_is_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n || s[i] < '0' || s[i] > '9')
        return false;
    if (s[i] == '0')
        i++;
    else
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    if (i < n && s[i] == '.') {
        size_t digits = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == digits)
            return false;
    }
    return i == n;
}

static void
json_value(FILE *out, const char *s, size_t n)
{
    if (json_is_number(s, n))
        fwrite(s, 1, n, out);
    else
        json_string(out, s, n);
}

static void
print_json(FILE *out, const struct stat_group *groups, int n)
{
    bool first_group = true;
    fputs("{", out);
    for (int i = 0; i < n; i++) {
        bool dup = false;
        for (int k = 0; k < i; k++)
            dup = dup || strcmp(groups[k].key, groups[i].key) == 0;
        if (dup)
            continue;                        /* keys of an object are unique */
        fputs(first_group ? "\n  " : ",\n  ", out);
        first_group = false;
        json_string(out, groups[i].title, strlen(groups[i].title));
        fputs(": {", out);
        for (size_t j = 0; j < groups[i].n; j++) {
            const struct stat_pair *p = &groups[i].pairs[j];
            fputs(j == 0 ? "\n    " : ",\n    ", out);
            json_string(out, p->name, p->name_len);
            fputs(": ", out);
            json_value(out, p->value, p->value_len);
        }
        fputs(groups[i].n > 0 ? "\n  }" : "}", out);
    }
    fputs(first_group ? "}\n" : "\n}\n", out);
}

/* ---- main ---------------------------------------------------------------- */

int
main(int argc, char **argv)
{
    struct options o = { 0 };
    struct mcconn_client client = { 0 };
    struct mcconn c = { .fd = -1 };
    struct stat_group *groups = NULL;
    int ngroups = 0, rc;

    rc = parse_options(&o, argc, argv);
    if (rc != MCSTAT_EXIT_OK) {
        rc = rc < 0 ? MCSTAT_EXIT_OK : rc;
        goto out;
    }
    rc = mcconn_client_setup(&client, &(struct mcconn_opts){
        .host = o.host, .port = o.port, .tls = o.tls, .cafile = o.cafile,
        .cert = o.cert, .key = o.key, .user = o.user,
        .password = o.password, .timeout_s = IO_TIMEOUT_S });
    if (rc != MCCONN_OK) {
        rc = conn_failed(client.error, rc);
        goto out;
    }
    rc = mcconn_open(&c, &client);
    if (rc != MCCONN_OK) {
        rc = conn_failed(c.error, rc);
        goto out;
    }
    if (o.watch_s > 0) {
        rc = mcstat_watch(&c, &o);
        goto out;
    }

    ngroups = o.ngroups > 0 ? o.ngroups : 1;
    groups = xrealloc(NULL, (size_t)ngroups * sizeof(*groups));
    for (int i = 0; i < ngroups; i++) {
        const char *name = o.ngroups > 0 ? o.groups[i] : "general";
        bool general = strcmp(name, "general") == 0;
        groups[i] = (struct stat_group){ .title = name,
                                         .key = general ? "" : name };
    }
    for (int i = 0; i < ngroups && rc == MCSTAT_EXIT_OK; i++) {
        rc = mcstat_fetch_group(&c, &groups[i]);
        if (rc == MCSTAT_EXIT_GROUP)
            fprintf(stderr, "mcstat: %s: unknown stats group '%s'\n",
                    c.where, groups[i].title);
    }
    if (rc == MCSTAT_EXIT_OK) {
        if (o.json)
            print_json(stdout, groups, ngroups);
        else
            print_text(stdout, groups, ngroups);
    }

out:
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "mcstat: writing the output: %s\n", strerror(errno));
        if (rc == MCSTAT_EXIT_OK)
            rc = MCSTAT_EXIT_PROTO;
    }
    for (int i = 0; i < ngroups; i++) {
        mcstat_group_clear(&groups[i]);
        free(groups[i].pairs);
    }
    free(groups);
    mcconn_close(&c);
    mcconn_client_teardown(&client);
    free(o.host);
    free(o.port);
    return rc;
}
