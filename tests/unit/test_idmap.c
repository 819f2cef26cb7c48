/*
 * test_idmap.c: unit tests of util/idmap.c, the id -> pointer map.
 *
 * Put, get, replace and remove; id 0 and NULL refused; growth keeps every
 * entry; and a long random sequence of puts and removes checked against a
 * plain array after every step (removal by backward shift is where an open
 * addressing table usually loses entries).
 */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

#include "util/idmap.h"
#include "util/status.h"

#define VAL(i) ((void *)(uintptr_t)(0x1000 + (i)))

static void
test_basic(void **state)
{
    (void)state;
    struct idmap m;
    idmap_init(&m);
    assert_null(idmap_get(&m, 1));
    assert_null(idmap_remove(&m, 1));
    assert_int_equal(idmap_put(&m, 1, VAL(1)), MCKV_OK);
    assert_int_equal(idmap_put(&m, 2, VAL(2)), MCKV_OK);
    assert_ptr_equal(idmap_get(&m, 1), VAL(1));
    assert_ptr_equal(idmap_get(&m, 2), VAL(2));
    assert_null(idmap_get(&m, 3));
    assert_int_equal(idmap_put(&m, 1, VAL(11)), MCKV_OK);   /* replace */
    assert_ptr_equal(idmap_get(&m, 1), VAL(11));
    assert_int_equal(m.count, 2);
    assert_ptr_equal(idmap_remove(&m, 1), VAL(11));
    assert_null(idmap_get(&m, 1));
    assert_null(idmap_remove(&m, 1));
    assert_ptr_equal(idmap_get(&m, 2), VAL(2));
    assert_int_equal(m.count, 1);
    idmap_deinit(&m);
}

static void
test_refused(void **state)
{
    (void)state;
    struct idmap m;
    idmap_init(&m);
    assert_int_equal(idmap_put(&m, 0, VAL(0)), MCKV_EINVAL);
    assert_int_equal(idmap_put(&m, 5, NULL), MCKV_EINVAL);
    assert_null(idmap_get(&m, 0));
    assert_int_equal(m.count, 0);
    idmap_deinit(&m);
}

static void
test_growth(void **state)
{
    (void)state;
    struct idmap m;
    idmap_init(&m);
    for (uint64_t i = 1; i <= 100000; i++)
        assert_int_equal(idmap_put(&m, i, VAL(i)), MCKV_OK);
    assert_int_equal(m.count, 100000);
    assert_true(m.capacity >= 2 * m.count);
    for (uint64_t i = 1; i <= 100000; i++)
        assert_ptr_equal(idmap_get(&m, i), VAL(i));
    assert_null(idmap_get(&m, 100001));
    /* large, sparse ids too */
    assert_int_equal(idmap_put(&m, UINT64_MAX, VAL(7)), MCKV_OK);
    assert_ptr_equal(idmap_get(&m, UINT64_MAX), VAL(7));
    idmap_deinit(&m);
}

/* Random puts and removes over a small id space (long probe runs that
 * wrap around the table), checked against an array after every step. */
static void
test_random_against_array(void **state)
{
    (void)state;
    enum { IDS = 300, STEPS = 200000 };
    void *model[IDS + 1] = { 0 };
    size_t count = 0;
    struct idmap m;
    idmap_init(&m);
    srand(12345);
    for (int step = 0; step < STEPS; step++) {
        uint64_t id = 1 + (uint64_t)(rand() % IDS);
        if (rand() % 2) {
            void *v = VAL(step);
            assert_int_equal(idmap_put(&m, id, v), MCKV_OK);
            if (model[id] == NULL)
                count++;
            model[id] = v;
        } else {
            assert_ptr_equal(idmap_remove(&m, id), model[id]);
            if (model[id] != NULL)
                count--;
            model[id] = NULL;
        }
        assert_int_equal(m.count, count);
        if (step % 97 == 0)
            for (uint64_t k = 1; k <= IDS; k++)
                assert_ptr_equal(idmap_get(&m, k), model[k]);
    }
    for (uint64_t k = 1; k <= IDS; k++)
        assert_ptr_equal(idmap_get(&m, k), model[k]);
    idmap_deinit(&m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_random_against_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
