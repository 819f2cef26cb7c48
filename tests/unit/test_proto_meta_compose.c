/*
 * test_proto_meta_compose.c: protocol/proto_meta_rsp.c's replies, byte for
 * byte as memcached 1.6.18 wrote them: mg, ms, md, ma, the longest reply,
 * and me's debug line.
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "protocol/proto_meta.h"
#include "tests/unit/proto_meta_helpers.h"

/* ---- composers, byte for byte as memcached 1.6.18 wrote them ---- */

/* Parses req_line and composes status from rsp; checks the bytes. */
static void
expect_rsp(const char *req_line, enum meta_status status,
           const struct meta_rsp *rsp, const char *want)
{
    struct meta_req req;
    char out[PROTO_META_RSP_MAX];

    expect_ok(&req, req_line);
    size_t n = proto_meta_compose_rsp(out, &req, status, rsp);
    assert_mem(out, n, want);
}

static void
test_compose_mg(void **state)
{
    (void)state;
    struct meta_rsp r = { .vlen = 2, .cas = 1, .client_flags = 5,
                          .ttl = 100, .last_access = 0 };

    expect_rsp("mg foo s t c f l h k Oabc v\r\n", META_RSP_VA, &r,
               "VA 2 s2 t100 c1 f5 l0 h0 kfoo Oabc\r\n");
    r.hit_before = true;
    r.last_access = 7;
    expect_rsp("mg foo v h l\r\n", META_RSP_VA, &r, "VA 2 h1 l7\r\n");
    expect_rsp("mg foo\r\n", META_RSP_HD, &r, "HD\r\n");
    expect_rsp("mg foo q\r\n", META_RSP_HD, &r, "HD\r\n");

    /* a miss: only O and k, in their order */
    expect_rsp("mg nothere s t c f l h Oxyz k v\r\n", META_RSP_EN, NULL,
               "EN Oxyz knothere\r\n");
    expect_rsp("mg nothere k Oxyz\r\n", META_RSP_EN, NULL,
               "EN knothere Oxyz\r\n");
    expect_rsp("mg foo O\r\n", META_RSP_EN, NULL, "EN O\r\n");
    expect_rsp("mg foo O k\r\n", META_RSP_EN, NULL, "EN O kfoo\r\n");
    expect_rsp("mg YWJk b k v Oq\r\n", META_RSP_EN, NULL,
               "EN kYWJk b Oq\r\n");
    expect_rsp("mg foo\r\n", META_RSP_EN, NULL, "EN\r\n");

    /* base64: the item's own key and mark */
    struct meta_rsp bin = { .vlen = 2, .key = "abc", .nkey = 3,
                            .key_binary = true };
    expect_rsp("mg abc k\r\n", META_RSP_HD, &bin, "HD kYWJj b\r\n");
    bin.key = NULL;
    expect_rsp("mg YWJj b k v Oq\r\n", META_RSP_VA, &bin,
               "VA 2 kYWJj b Oq\r\n");

    /* vivify: the first client wins, the next sees Z */
    struct meta_rsp viv = { .vlen = 0, .cas = 7, .ttl = -1,
                            .ttl_after_vivify = 30, .vivified = true,
                            .won = true };
    expect_rsp("mg vivg q N30 s k O1 c\r\n", META_RSP_HD, &viv,
               "HD s0 kvivg O1 c7 W\r\n");
    struct meta_rsp viv2 = { .vlen = 0, .cas = 7, .ttl = 30,
                             .won_by_other = true };
    expect_rsp("mg vivg q N30 s k O1 c\r\n", META_RSP_HD, &viv2,
               "HD s0 kvivg O1 c7 Z\r\n");
    /* t before N shows the TTL the item was created with */
    expect_rsp("mg viv3 t N30 s v\r\n", META_RSP_VA, &viv,
               "VA 0 t-1 s0 W\r\n");
    expect_rsp("mg viv3 N30 t\r\n", META_RSP_HD, &viv, "HD t30 W\r\n");
    viv.vivified = false;
    expect_rsp("mg viv3 N30 t\r\n", META_RSP_HD, &viv, "HD t-1 W\r\n");

    /* stale (md I): X, and W for the first to see it; Z X after */
    struct meta_rsp st = { .vlen = 2, .cas = 9, .stale = true,
                           .won = true };
    expect_rsp("mg stale s c v O9 k\r\n", META_RSP_VA, &st,
               "VA 2 s2 c9 O9 kstale X W\r\n");
    st.won = false;
    st.won_by_other = true;
    expect_rsp("mg stale s c v O9 k\r\n", META_RSP_VA, &st,
               "VA 2 s2 c9 O9 kstale Z X\r\n");
    expect_rsp("mg stale R10 c\r\n", META_RSP_HD, &st, "HD c9 Z X\r\n");

    /* R: win the recache token */
    struct meta_rsp rc = { .cas = 10, .ttl = 5, .won = true };
    expect_rsp("mg rc R30 c t\r\n", META_RSP_HD, &rc, "HD c10 t5 W\r\n");

    /* T changes the TTL where it stands */
    struct meta_rsp tt = { .ttl = 99, .ttl_after_set = 50 };
    expect_rsp("mg tk t T50\r\n", META_RSP_HD, &tt, "HD t99\r\n");
    tt.ttl_after_set = 60;
    expect_rsp("mg tk T60 t\r\n", META_RSP_HD, &tt, "HD t60\r\n");
    tt.ttl_after_set = -1;
    expect_rsp("mg tk T0 t\r\n", META_RSP_HD, &tt, "HD t-1\r\n");
}

static void
test_compose_ms_md_ma(void **state)
{
    (void)state;

    /* ms: O k c in request order; c is 0 unless stored */
    struct meta_rsp r = { .cas = 2 };
    expect_rsp("ms YWJj 2 b k c Oxx\r\nhi\r\n", META_RSP_HD, &r,
               "HD kYWJj b c2 Oxx\r\n");
    expect_rsp("ms mk 1 c k Oz MR\r\nx\r\n", META_RSP_NS, NULL,
               "NS c0 kmk Oz\r\n");
    r.cas = 853;
    expect_rsp("ms mk 1 Oz k c ME\r\nx\r\n", META_RSP_HD, &r,
               "HD Oz kmk c853\r\n");
    expect_rsp("ms mk 1 Oz k c ME\r\nx\r\n", META_RSP_NS, NULL,
               "NS Oz kmk c0\r\n");
    expect_rsp("ms mk 1 Oz c C1\r\nx\r\n", META_RSP_EX, NULL, "EX Oz c0\r\n");
    r.cas = 854;
    r.vlen = 1;
    r.ttl = 5;
    expect_rsp("ms mk 1 Oz c k s t f v\r\nx\r\n", META_RSP_HD, &r,
               "HD Oz c854 kmk\r\n");
    expect_rsp("ms cx 2 c C999\r\nhi\r\n", META_RSP_NF, NULL, "NF c0\r\n");
    expect_rsp("ms cx 2 q\r\nhi\r\n", META_RSP_HD, NULL, "HD\r\n");

    /* md: O k */
    expect_rsp("md nothere k Oa q\r\n", META_RSP_NF, NULL,
               "NF knothere Oa\r\n");
    expect_rsp("md delk Oa k C1\r\n", META_RSP_EX, NULL, "EX Oa kdelk\r\n");
    expect_rsp("md delk Oa k\r\n", META_RSP_HD, NULL, "HD Oa kdelk\r\n");
    expect_rsp("md YWJjZA== b k Oa\r\n", META_RSP_HD, NULL,
               "HD kYWJjZA== b Oa\r\n");
    expect_rsp("md foo I T30 q\r\n", META_RSP_HD, NULL, "HD\r\n");

    /* ma: c t O k on a hit, O k otherwise */
    expect_rsp("ma nocnt Oz k c t v\r\n", META_RSP_NF, NULL,
               "NF Oz knocnt\r\n");
    expect_rsp("ma YWJjZA== b Oz k\r\n", META_RSP_NF, NULL,
               "NF Oz kYWJjZA== b\r\n");
    expect_rsp("ma cnt9 c C1 k\r\n", META_RSP_EX, NULL, "EX kcnt9\r\n");
    struct meta_rsp a = { .vlen = 2, .cas = 5, .ttl = -1 };
    expect_rsp("ma cnt9 v t k Oz\r\n", META_RSP_VA, &a,
               "VA 2 t-1 kcnt9 Oz\r\n");
    struct meta_rsp viv = { .vlen = 1, .cas = 14, .ttl = -1,
                            .ttl_after_vivify = 100, .vivified = true };
    expect_rsp("ma cz c t v N100 k O5\r\n", META_RSP_VA, &viv,
               "VA 1 c14 t-1 kcz O5\r\n");
    struct meta_rsp set = { .vlen = 1, .cas = 15, .ttl = 100,
                            .ttl_after_set = 50 };
    expect_rsp("ma cz c t v T50 k O5\r\n", META_RSP_VA, &set,
               "VA 1 c15 t100 kcz O5\r\n");
    set.ttl = 50;
    set.ttl_after_set = 60;
    expect_rsp("ma cz t T60\r\n", META_RSP_HD, &set, "HD t50\r\n");
    /* ma never writes s f l h or the token flags */
    expect_rsp("ma cz s f l h t\r\n", META_RSP_HD, &set, "HD t50\r\n");
    expect_rsp("ma mu N90\r\n", META_RSP_HD, &viv, "HD\r\n");

    /* mn */
    expect_rsp("mn\r\n", META_RSP_MN, NULL, "MN\r\n");
}

static void
test_compose_longest(void **state)
{
    (void)state;
    /* every return flag at its widest, with a 250-byte binary key */
    char key[PROTO_KEY_MAX], opaque[PROTO_META_OPAQUE_MAX + 1];
    char line[128], want[PROTO_META_RSP_MAX];
    memset(key, '\xff', sizeof(key));
    memset(opaque, 'y', PROTO_META_OPAQUE_MAX);
    opaque[PROTO_META_OPAQUE_MAX] = '\0';
    snprintf(line, sizeof(line), "mg foo s t c f l h k O%s v T1 N1 q\r\n",
             opaque);
    struct meta_req req;
    expect_ok(&req, line);
    struct meta_rsp r = {
        .vlen = UINT32_MAX, .cas = UINT64_MAX, .client_flags = UINT32_MAX,
        .ttl = INT64_MIN, .ttl_after_set = INT64_MIN,
        .ttl_after_vivify = INT64_MIN, .last_access = UINT32_MAX,
        .hit_before = true, .vivified = true, .won = true, .stale = true,
        .won_by_other = true, .key = key, .nkey = PROTO_KEY_MAX,
        .key_binary = true,
    };
    size_t w = (size_t)snprintf(want, sizeof(want),
                                "VA 4294967295 s4294967295 "
                                "t-9223372036854775808 "
                                "c18446744073709551615 f4294967295 "
                                "l4294967295 h1 k");
    for (int i = 0; i < PROTO_KEY_MAX / 3; i++) {
        memcpy(want + w, "////", 4);
        w += 4;
    }
    w += (size_t)snprintf(want + w, sizeof(want) - w, "/w== b O%s Z X W\r\n",
                          opaque);
    char out[PROTO_META_RSP_MAX];
    size_t n = proto_meta_compose_rsp(out, &req, META_RSP_VA, &r);
    assert_true(n <= PROTO_META_RSP_MAX);
    assert_int_equal(n, w);
    assert_memory_equal(out, want, w);
}

static void
test_compose_debug(void **state)
{
    (void)state;
    char out[PROTO_META_DEBUG_MAX];
    struct meta_debug d = { .exp = -100, .last_access = 0, .cas = 1,
                            .fetched = false, .slab_class = 1,
                            .total_size = 68 };
    size_t n = proto_meta_compose_debug(out, "foo", 3, false, &d);
    assert_mem(out, n, "ME foo exp=-100 la=0 cas=1 fetch=no cls=1 size=68\r\n");

    struct meta_debug b = { .exp = -1, .last_access = 0, .cas = 11,
                            .fetched = false, .slab_class = 1,
                            .total_size = 64 };
    n = proto_meta_compose_debug(out, "abc", 3, true, &b);
    assert_mem(out, n,
               "ME YWJj exp=-1 la=0 cas=11 fetch=no cls=1 size=64\r\n");
    b.fetched = true;
    b.last_access = 12;
    n = proto_meta_compose_debug(out, "abc", 3, false, &b);
    assert_mem(out, n,
               "ME abc exp=-1 la=12 cas=11 fetch=yes cls=1 size=64\r\n");

    /* the widest */
    char key[PROTO_KEY_MAX];
    memset(key, 0, sizeof(key));
    struct meta_debug w = { .exp = INT64_MIN, .last_access = UINT64_MAX,
                            .cas = UINT64_MAX, .fetched = true,
                            .slab_class = UINT32_MAX,
                            .total_size = UINT64_MAX };
    n = proto_meta_compose_debug(out, key, PROTO_KEY_MAX, true, &w);
    assert_true(n <= PROTO_META_DEBUG_MAX);
    assert_memory_equal(out + n - 2, "\r\n", 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_compose_mg, teardown),
        cmocka_unit_test_teardown(test_compose_ms_md_ma, teardown),
        cmocka_unit_test_teardown(test_compose_longest, teardown),
        cmocka_unit_test_teardown(test_compose_debug, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
