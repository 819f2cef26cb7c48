/*
 * mcload_opts.c: mcload's command line and its defaults.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/mcload.h"

struct options opt = {
    .host = "127.0.0.1", .port = "11211", .threads = 2, .conns = 25,
    .pipeline = 1, .binary = true, .keys = 100000, .value_size = 100,
    .get_ratio = 0.9, .requests = UINT64_MAX, .seed = 1, .stall_timeout = 10,
};

static void
usage(FILE *f)
{
    fputs("usage: mcload [options]\n"
          "  --host H          server address (127.0.0.1)\n"
          "  --port N          server port (11211)\n"
          "  --threads T       client threads, one event_base each (2)\n"
          "  --conns C         connections per thread (25)\n"
          "  --pipeline D      requests in flight per connection (1)\n"
          "  --protocol P      binary | text (binary)\n"
          "  --keys K          key space, keys \"key:%010u\" (100000)\n"
          "  --value-size B    value bytes for sets (100)\n"
          "  --get-ratio R     fraction of gets, 0..1, rest sets (0.9)\n"
          "  --prefill         first set every key once (not measured)\n"
          "  --requests N      stop after N requests\n"
          "  --duration S      stop after S seconds (default 10 when\n"
          "                    --requests is not given)\n"
          "  --rate OPS        open loop at OPS requests/s over all\n"
          "                    connections; latency from the due time\n"
          "  --sequential      keys 0..K-1 in order instead of random\n"
          "  --shuffle         with --sequential: each key once, in a\n"
          "                    scrambled order (random keys, no repeats)\n"
          "  --retry           send a refused set again (counted as retries=,\n"
          "                    not errors=): an ingest stores every key\n"
          "  --tick            print TICK sec= ops= max_us= every second\n"
          "  --seed N          random seed (1)\n"
          "  --timeout S       fail when no reply comes for S s (10)\n"
          "  --tls             TLS on every connection (handshakes before\n"
          "                    the run); the server's certificate must verify\n"
          "  --cafile F        trust the CAs in F (PEM), not the system's\n"
          "  --cert F, --key F client certificate and key (PEM)\n"
          "  --sasl-user U     authenticate every connection with SASL\n"
          "                    (binary protocol)\n"
          "  --sasl-password P its password\n"
          "Prints PREFILL (with --prefill) and a final line:\n"
          "RESULT ops= seconds= ops_per_sec= p50_us= p99_us= p999_us= "
          "max_us= errors= misses= retries=\n", f);
}

static double
parse_num(const char *name, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
        fprintf(stderr, "mcload: --%s: '%s' is not a number in [%g, %g]\n",
                name, s, lo, hi);
        exit(2);
    }
    return v;
}

void
parse_options(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "host", required_argument, NULL, 'h' },
        { "port", required_argument, NULL, 'p' },
        { "threads", required_argument, NULL, 't' },
        { "conns", required_argument, NULL, 'c' },
        { "pipeline", required_argument, NULL, 'd' },
        { "protocol", required_argument, NULL, 'P' },
        { "keys", required_argument, NULL, 'k' },
        { "value-size", required_argument, NULL, 'v' },
        { "get-ratio", required_argument, NULL, 'g' },
        { "prefill", no_argument, NULL, 'F' },
        { "requests", required_argument, NULL, 'n' },
        { "duration", required_argument, NULL, 'D' },
        { "rate", required_argument, NULL, 'r' },
        { "sequential", no_argument, NULL, 'S' },
        { "shuffle", no_argument, NULL, 'X' },
        { "retry", no_argument, NULL, 'Y' },
        { "tick", no_argument, NULL, 'K' },
        { "seed", required_argument, NULL, 's' },
        { "timeout", required_argument, NULL, 'T' },
        { "tls", no_argument, NULL, 'L' },
        { "cafile", required_argument, NULL, 'A' },
        { "cert", required_argument, NULL, 'C' },
        { "key", required_argument, NULL, 'E' },
        { "sasl-user", required_argument, NULL, 'u' },
        { "sasl-password", required_argument, NULL, 'w' },
        { "help", no_argument, NULL, 'H' },
        { NULL, 0, NULL, 0 },
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        const char *name = "";
        for (const struct option *o = longopts; o->name; o++)
            if (o->val == ch)
                name = o->name;
        switch (ch) {
        case 'h': opt.host = optarg; break;
        case 'p': parse_num(name, optarg, 1, 65535); opt.port = optarg; break;
        case 't': opt.threads = (unsigned)parse_num(name, optarg, 1, 256); break;
        case 'c': opt.conns = (unsigned)parse_num(name, optarg, 1, 10000); break;
        case 'd': opt.pipeline = (unsigned)parse_num(name, optarg, 1, 4096); break;
        case 'P':
            if (strcmp(optarg, "binary") != 0 && strcmp(optarg, "text") != 0) {
                fprintf(stderr, "mcload: --protocol: binary or text\n");
                exit(2);
            }
            opt.binary = strcmp(optarg, "binary") == 0;
            break;
        case 'k': opt.keys = (uint32_t)parse_num(name, optarg, 1, UINT32_MAX); break;
        case 'v': opt.value_size = (uint32_t)parse_num(name, optarg, 0, MAX_VALUE_SIZE); break;
        case 'g': opt.get_ratio = parse_num(name, optarg, 0, 1); break;
        case 'F': opt.prefill = true; break;
        case 'n': opt.requests = (uint64_t)parse_num(name, optarg, 0, 1e18); break;
        case 'D': opt.duration = parse_num(name, optarg, 0.001, 1e6); break;
        case 'r': opt.rate = parse_num(name, optarg, 1, 1e9); break;
        case 'S': opt.sequential = true; break;
        case 'X': opt.shuffle = true; break;
        case 'Y': opt.retry = true; break;
        case 'K': opt.tick = true; break;
        case 's': opt.seed = (uint64_t)parse_num(name, optarg, 0, 1e18); break;
        case 'T': opt.stall_timeout = (unsigned)parse_num(name, optarg, 1, 3600); break;
        case 'L': opt.tls = true; break;
        case 'A': opt.cafile = optarg; break;
        case 'C': opt.cert = optarg; break;
        case 'E': opt.key = optarg; break;
        case 'u': opt.sasl_user = optarg; break;
        case 'w': opt.sasl_password = optarg; break;
        case 'H': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mcload: unexpected argument '%s'\n", argv[optind]);
        exit(2);
    }
    if ((opt.sasl_user == NULL) != (opt.sasl_password == NULL) ||
        (opt.sasl_user != NULL && !opt.binary)) {
        fprintf(stderr, "mcload: --sasl-user and --sasl-password go "
                "together, with --protocol binary\n");
        exit(2);
    }
    if (!opt.tls && (opt.cafile || opt.cert || opt.key)) {
        fprintf(stderr, "mcload: --cafile, --cert and --key need --tls\n");
        exit(2);
    }
    if (opt.requests == UINT64_MAX && opt.duration == 0)
        opt.duration = 10;
}

