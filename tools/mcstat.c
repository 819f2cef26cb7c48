/*
 * mcstat.c: the statistics client for mckv (and any memcached 1.6).
 *
 * Speaks the binary protocol only: an optional SASL PLAIN exchange, then one
 * STAT request per group; the server answers one packet per statistic (key =
 * name, value = value) and ends with a packet whose key is empty. Every group
 * is fetched into memory before anything is printed, so a failing request
 * leaves stdout empty and the exit status tells what went wrong (see
 * enum mcstat_exit; the same list is in mcstat.1).
 *
 * Watch mode (-w) keeps one connection, samples the general group (and
 * kvstore when the server has it) every interval on a drift-free schedule,
 * and prints per-second rates of the counters. SIGINT and SIGTERM are blocked
 * except while it sleeps in ppoll(), so a signal never interrupts a request
 * half way and is never lost between the check and the sleep.
 *
 * Packets are composed and parsed with protocol/proto_bin; nothing else of
 * mckv is used.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "protocol/proto_bin.h"

enum mcstat_exit {
    MCSTAT_EXIT_OK = 0,
    MCSTAT_EXIT_USAGE = 1,
    MCSTAT_EXIT_CONNECT = 2,    /* resolution failed, refused, unreachable */
    MCSTAT_EXIT_AUTH = 3,       /* SASL refused, or the server has none */
    MCSTAT_EXIT_GROUP = 4,      /* the server does not know a group */
    MCSTAT_EXIT_PROTO = 5,      /* bad reply, closed connection, timeout */
};

#define IO_TIMEOUT_S 5
#define MAX_REPLY_BODY (16u << 20)
#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT "11211"

struct options {
    char *host;                 /* without brackets or port */
    char *port;
    const char *user;
    const char *password;
    bool json;
    double watch_s;             /* 0: no watch mode */
    unsigned long count;        /* watch intervals; 0: until a signal */
    char **groups;
    int ngroups;
};

struct mc_conn {
    int fd;
    char where[300];            /* "host:port" for messages */
    char *buf;
    size_t len, cap, used;      /* used: bytes of the last parsed reply */
    uint32_t opaque;
};

struct stat_pair {
    char *name, *value;
    size_t name_len, value_len;
};

struct stat_group {
    const char *title;          /* "general" for the empty key */
    const char *key;
    struct stat_pair *pairs;
    size_t n, cap;
};

static volatile sig_atomic_t stop_requested;

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
"  -u, --user=USER          authenticate with SASL PLAIN as USER\n"
"  -P, --password=PASSWORD  SASL password (default: $MCSTAT_PASSWORD)\n"
"  -j, --json               print one JSON object {\"group\": {...}, ...}\n"
"  -w, --watch=SECONDS      print rates of the general and kvstore counters\n"
"                           every SECONDS until SIGINT or SIGTERM\n"
"  -n, --count=COUNT        with -w: stop after COUNT intervals\n"
"  -V, --version            print the version and exit\n"
"      --help               print this help and exit\n"
"\n"
"Exit status: 0 ok, 1 usage error, 2 cannot connect, 3 authentication\n"
"failed, 4 unknown group, 5 protocol error or timeout.\n");
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

/* ---- connection ---------------------------------------------------------- */

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Connects fd (non-blocking) within the remaining time; 0 or an errno. */
static int
connect_one(int fd, const struct addrinfo *ai, double deadline)
{
    int err = 0;
    socklen_t elen = sizeof(err);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return errno;
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        double left = deadline - now_s();
        int n;
        if (left <= 0)
            return ETIMEDOUT;
        n = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            return ETIMEDOUT;
        break;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        return errno;
    return err;
}

static int
mc_connect(struct mc_conn *c, const char *host, const char *port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM };
    struct addrinfo *res, *ai;
    struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
    double deadline = now_s() + IO_TIMEOUT_S;
    int rc, err = 0, one = 1;

    snprintf(c->where, sizeof(c->where),
             strchr(host, ':') != NULL ? "[%s]:%s" : "%s:%s", host, port);
    c->fd = -1;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "mcstat: cannot resolve %s: %s\n", host,
                rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return MCSTAT_EXIT_CONNECT;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family,
                        ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        err = connect_one(fd, ai, deadline);
        if (err == 0) {
            c->fd = fd;
            break;
        }
        close(fd);
    }
    freeaddrinfo(res);
    if (c->fd < 0) {
        fprintf(stderr, "mcstat: cannot connect to %s: %s\n", c->where,
                strerror(err));
        return MCSTAT_EXIT_CONNECT;
    }
    /* Blocking from here on; every send and recv is bounded by 5 s. */
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK) < 0 ||
        setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
        fprintf(stderr, "mcstat: %s: %s\n", c->where, strerror(errno));
        return MCSTAT_EXIT_PROTO;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return MCSTAT_EXIT_OK;
}

static int
io_error(const struct mc_conn *c, const char *what, ssize_t n)
{
    if (n == 0)
        fprintf(stderr, "mcstat: %s: connection closed by the server "
                "while %s\n", c->where, what);
    else if (errno == EAGAIN || errno == EWOULDBLOCK)
        fprintf(stderr, "mcstat: %s: no reply within %d s while %s\n",
                c->where, IO_TIMEOUT_S, what);
    else
        fprintf(stderr, "mcstat: %s: %s while %s\n", c->where,
                strerror(errno), what);
    return MCSTAT_EXIT_PROTO;
}

static int
send_req(struct mc_conn *c, uint8_t opcode, const char *key, size_t keylen,
         const char *value, size_t vlen)
{
    char pkt[PROTO_BIN_HDR_LEN + PROTO_KEY_MAX + 1024];
    size_t len = PROTO_BIN_HDR_LEN + keylen + vlen, off = 0;

    if (keylen > PROTO_KEY_MAX || vlen > 1024)
        abort();    /* parse_options() bounds both */
    proto_bin_compose_req_hdr(pkt, opcode, 0, (uint16_t)keylen,
                              (uint32_t)(keylen + vlen), ++c->opaque, 0);
    if (keylen > 0)
        memcpy(pkt + PROTO_BIN_HDR_LEN, key, keylen);
    if (vlen > 0)
        memcpy(pkt + PROTO_BIN_HDR_LEN + keylen, value, vlen);
    while (off < len) {
        ssize_t n = send(c->fd, pkt + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return io_error(c, "sending", n < 0 ? -1 : 1);
        off += (size_t)n;
    }
    return MCSTAT_EXIT_OK;
}

/* Reads the next reply to `opcode`; rsp points into c->buf until the next
 * call. */
static int
read_rsp(struct mc_conn *c, uint8_t opcode, struct bin_rsp *rsp)
{
    if (c->used > 0) {
        memmove(c->buf, c->buf + c->used, c->len - c->used);
        c->len -= c->used;
        c->used = 0;
    }
    for (;;) {
        size_t consumed, need;
        ssize_t n;
        proto_parse pr = proto_bin_parse_rsp(rsp, c->buf, c->len,
                                             MAX_REPLY_BODY, &consumed);
        if (pr == PARSE_OK) {
            c->used = consumed;
            if (rsp->opcode != opcode || rsp->opaque != c->opaque) {
                fprintf(stderr, "mcstat: %s: reply to opcode 0x%02x "
                        "(opaque %" PRIu32 ") where 0x%02x (opaque %" PRIu32
                        ") was expected\n", c->where, rsp->opcode,
                        rsp->opaque, opcode, c->opaque);
                return MCSTAT_EXIT_PROTO;
            }
            return MCSTAT_EXIT_OK;
        }
        if (pr != PARSE_EUNFIN) {
            fprintf(stderr, "mcstat: %s: malformed reply (%s)\n", c->where,
                    pr == PARSE_EOVERSIZE ? "body over 16 MB"
                                          : "not a binary protocol reply");
            return MCSTAT_EXIT_PROTO;
        }
        need = c->len < PROTO_BIN_HDR_LEN ? PROTO_BIN_HDR_LEN
                                          : PROTO_BIN_HDR_LEN + rsp->bodylen;
        if (need < c->len + 4096)
            need = c->len + 4096;
        if (need > c->cap) {
            c->buf = xrealloc(c->buf, need);
            c->cap = need;
        }
        do {
            n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        } while (n < 0 && errno == EINTR);
        if (n <= 0)
            return io_error(c, "waiting for a reply", n);
        c->len += (size_t)n;
    }
}

static int
sasl_plain(struct mc_conn *c, const char *user, const char *password)
{
    char value[1024];
    size_t ulen = strlen(user), plen = strlen(password);
    struct bin_rsp rsp;
    int rc;

    value[0] = '\0';                         /* no authorization id */
    memcpy(value + 1, user, ulen);
    value[1 + ulen] = '\0';
    memcpy(value + 2 + ulen, password, plen);
    rc = send_req(c, BIN_OP_SASL_AUTH, "PLAIN", 5, value, ulen + plen + 2);
    if (rc == MCSTAT_EXIT_OK)
        rc = read_rsp(c, BIN_OP_SASL_AUTH, &rsp);
    memset(value, 0, sizeof(value));
    if (rc != MCSTAT_EXIT_OK)
        return rc;
    switch (rsp.status) {
    case BIN_STATUS_SUCCESS:
        return MCSTAT_EXIT_OK;
    case BIN_STATUS_UNKNOWN_COMMAND:
    case BIN_STATUS_NOT_SUPPORTED:
        fprintf(stderr, "mcstat: %s: the server has no SASL "
                "authentication (-u given)\n", c->where);
        return MCSTAT_EXIT_AUTH;
    case BIN_STATUS_AUTH_ERROR:
    case BIN_STATUS_AUTH_CONTINUE:
        fprintf(stderr, "mcstat: %s: authentication failed for user '%s'\n",
                c->where, user);
        return MCSTAT_EXIT_AUTH;
    default:
        fprintf(stderr, "mcstat: %s: SASL PLAIN: unexpected status 0x%02x\n",
                c->where, rsp.status);
        return MCSTAT_EXIT_PROTO;
    }
}

/* ---- stats --------------------------------------------------------------- */

static void
group_clear(struct stat_group *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->pairs[i].name);
        free(g->pairs[i].value);
    }
    g->n = 0;
}

/*
 * Fetches one group into g (cleared first). Prints its own error line
 * except for MCSTAT_EXIT_GROUP (the caller says which group, or ignores it).
 */
static int
fetch_group(struct mc_conn *c, struct stat_group *g)
{
    struct bin_rsp rsp;
    int rc = send_req(c, BIN_OP_STAT, g->key, strlen(g->key), NULL, 0);

    group_clear(g);
    while (rc == MCSTAT_EXIT_OK) {
        rc = read_rsp(c, BIN_OP_STAT, &rsp);
        if (rc != MCSTAT_EXIT_OK)
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
    return rc;
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

/* ---- watch mode ---------------------------------------------------------- */

/* One watched quantity: the sum of one or two stats; a counter is shown as
 * a rate per second, a gauge as its current value. */
struct watch_field {
    const char *label;          /* plain and terminal output */
    const char *json_name;
    const char *stat_a, *stat_b;
    bool gauge, kvstore;
};

static const struct watch_field watch_fields[] = {
    { "get/s", "cmd_get_per_s", "cmd_get", NULL, false, false },
    { "set/s", "cmd_set_per_s", "cmd_set", NULL, false, false },
    { "touch/s", "cmd_touch_per_s", "cmd_touch", NULL, false, false },
    { "flush/s", "cmd_flush_per_s", "cmd_flush", NULL, false, false },
    { "delete/s", "delete_per_s", "delete_hits", "delete_misses", false,
      false },
    { "incr/s", "incr_per_s", "incr_hits", "incr_misses", false, false },
    { "decr/s", "decr_per_s", "decr_hits", "decr_misses", false, false },
    { "hits/s", "get_hits_per_s", "get_hits", NULL, false, false },
    { "misses/s", "get_misses_per_s", "get_misses", NULL, false, false },
    { "read_B/s", "bytes_read_per_s", "bytes_read", NULL, false, false },
    { "written_B/s", "bytes_written_per_s", "bytes_written", NULL, false,
      false },
    { "persisted/s", "items_persisted_per_s", "items_persisted", NULL, false,
      true },
    { "queue_depth", "queue_depth", "queue_depth", NULL, true, true },
    { "bg_fetches/s", "bg_fetches_per_s", "bg_fetches", NULL, false, true },
    { "conns", "curr_connections", "curr_connections", NULL, true, false },
    { "items", "curr_items", "curr_items", NULL, true, false },
    { "dirty_items", "dirty_items", "dirty_items", NULL, true, true },
};
#define WATCH_NFIELDS (sizeof(watch_fields) / sizeof(watch_fields[0]))

struct watch_sample {
    double t;
    bool have[WATCH_NFIELDS];
    uint64_t v[WATCH_NFIELDS];
};

static bool
stat_u64(const struct stat_group *g, const char *name, uint64_t *out)
{
    for (size_t i = 0; i < g->n; i++) {
        char *end;
        if (strcmp(g->pairs[i].name, name) != 0)
            continue;
        if (g->pairs[i].value[0] < '0' || g->pairs[i].value[0] > '9')
            return false;
        errno = 0;
        *out = strtoull(g->pairs[i].value, &end, 10);
        return errno == 0 && *end == '\0';
    }
    return false;
}

static int
watch_sample_take(struct mc_conn *c, struct stat_group *general,
                  struct stat_group *kvstore, bool *has_kvstore,
                  struct watch_sample *s)
{
    int rc;
    s->t = now_s();
    rc = fetch_group(c, general);
    if (rc == MCSTAT_EXIT_GROUP) {
        fprintf(stderr, "mcstat: %s: no general stats\n", c->where);
        return MCSTAT_EXIT_PROTO;
    }
    if (rc == MCSTAT_EXIT_OK && *has_kvstore) {
        rc = fetch_group(c, kvstore);
        if (rc == MCSTAT_EXIT_GROUP) {       /* memcached, or no persistence */
            *has_kvstore = false;
            group_clear(kvstore);
            rc = MCSTAT_EXIT_OK;
        }
    }
    for (size_t i = 0; i < WATCH_NFIELDS && rc == MCSTAT_EXIT_OK; i++) {
        const struct watch_field *f = &watch_fields[i];
        const struct stat_group *g = f->kvstore ? kvstore : general;
        uint64_t a = 0, b = 0;
        s->have[i] = stat_u64(g, f->stat_a, &a) &&
                     (f->stat_b == NULL || stat_u64(g, f->stat_b, &b));
        s->v[i] = a + b;
    }
    return rc;
}

/* Formats field i of cur (a rate against prev for counters) into buf;
 * false when it is unknown. */
static bool
watch_format(char *buf, size_t size, size_t i, const struct watch_sample *prev,
             const struct watch_sample *cur)
{
    uint64_t delta;
    if (!cur->have[i])
        return false;
    if (watch_fields[i].gauge) {
        snprintf(buf, size, "%" PRIu64, cur->v[i]);
        return true;
    }
    if (!prev->have[i])
        return false;
    /* A counter that went down was reset (stats reset, restart): count from
     * zero. */
    delta = cur->v[i] >= prev->v[i] ? cur->v[i] - prev->v[i] : cur->v[i];
    snprintf(buf, size, "%.1f", (double)delta / (cur->t - prev->t));
    return true;
}

static void
watch_print(FILE *out, const struct options *o, const struct mc_conn *c,
            bool tty, const struct watch_sample *prev,
            const struct watch_sample *cur)
{
    char stamp[32], val[64];
    time_t now = time(NULL);
    struct tm tm;

    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    if (o->json) {
        fprintf(out, "{\"time\": \"%s\", \"interval_s\": %.3f", stamp,
                cur->t - prev->t);
        for (size_t i = 0; i < WATCH_NFIELDS; i++) {
            bool known = watch_format(val, sizeof(val), i, prev, cur);
            fprintf(out, ", \"%s\": %s", watch_fields[i].json_name,
                    known ? val : "null");
        }
        fputs("}\n", out);
    } else if (tty) {
        fprintf(out, "\033[H\033[2Jmcstat %s  every %g s  %s\n\n",
                c->where, o->watch_s, stamp);
        for (size_t i = 0; i < WATCH_NFIELDS; i++) {
            bool known = watch_format(val, sizeof(val), i, prev, cur);
            fprintf(out, "%-14s %16s\n", watch_fields[i].label,
                    known ? val : "-");
        }
    } else {
        fputs(stamp, out);
        for (size_t i = 0; i < WATCH_NFIELDS; i++) {
            bool known = watch_format(val, sizeof(val), i, prev, cur);
            fprintf(out, " %s=%s", watch_fields[i].label, known ? val : "-");
        }
        fputc('\n', out);
    }
    fflush(out);
}

static void
on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int
watch(struct mc_conn *c, const struct options *o)
{
    struct stat_group general = { .title = "general", .key = "" };
    struct stat_group kvstore = { .title = "kvstore", .key = "kvstore" };
    struct watch_sample samples[2];
    struct sigaction sa = { .sa_handler = on_stop_signal };
    sigset_t block, sleep_mask;
    bool has_kvstore = true, tty = isatty(STDOUT_FILENO);
    unsigned long printed = 0;
    double next;
    int rc, cur = 0;

    /* Signals are only delivered inside ppoll(): a request always finishes
     * (within its 5 s timeout) and a signal cannot slip in between the
     * stop_requested check and the sleep. */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &sleep_mask);
    sigdelset(&sleep_mask, SIGINT);
    sigdelset(&sleep_mask, SIGTERM);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rc = watch_sample_take(c, &general, &kvstore, &has_kvstore, &samples[0]);
    if (rc == MCSTAT_EXIT_OK && tty && !o->json) {
        printf("\033[H\033[2Jmcstat %s  every %g s: first sample taken\n",
               c->where, o->watch_s);
        fflush(stdout);
    }
    next = samples[0].t + o->watch_s;
    while (rc == MCSTAT_EXIT_OK && !stop_requested) {
        double left = next - now_s();
        if (left > 0) {
            struct timespec ts = { .tv_sec = (time_t)left };
            ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
            if (ppoll(NULL, 0, &ts, &sleep_mask) < 0 && errno != EINTR) {
                perror("mcstat: ppoll");
                rc = MCSTAT_EXIT_PROTO;
            }
            continue;           /* re-check the flag and the time */
        }
        while (next <= now_s())
            next += o->watch_s;  /* a slow reply skips ticks, no catch-up */
        rc = watch_sample_take(c, &general, &kvstore, &has_kvstore,
                               &samples[1 - cur]);
        if (rc != MCSTAT_EXIT_OK)
            break;
        cur = 1 - cur;
        watch_print(stdout, o, c, tty, &samples[1 - cur], &samples[cur]);
        if (o->count != 0 && ++printed >= o->count)
            break;
    }
    group_clear(&general);
    group_clear(&kvstore);
    free(general.pairs);
    free(kvstore.pairs);
    return rc;
}

/* ---- main ---------------------------------------------------------------- */

int
main(int argc, char **argv)
{
    struct options o = { 0 };
    struct mc_conn c = { .fd = -1 };
    struct stat_group *groups = NULL;
    int ngroups = 0, rc;

    rc = parse_options(&o, argc, argv);
    if (rc != MCSTAT_EXIT_OK) {
        rc = rc < 0 ? MCSTAT_EXIT_OK : rc;
        goto out;
    }
    rc = mc_connect(&c, o.host, o.port);
    if (rc == MCSTAT_EXIT_OK && o.user != NULL)
        rc = sasl_plain(&c, o.user, o.password);
    if (rc != MCSTAT_EXIT_OK)
        goto out;
    if (o.watch_s > 0) {
        rc = watch(&c, &o);
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
        rc = fetch_group(&c, &groups[i]);
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
        group_clear(&groups[i]);
        free(groups[i].pairs);
    }
    free(groups);
    free(c.buf);
    if (c.fd >= 0)
        close(c.fd);
    free(o.host);
    free(o.port);
    return rc;
}
