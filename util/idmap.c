/*
 * idmap.c: id -> pointer map (contract in idmap.h).
 */
#include <config.h>

#include <stdlib.h>

#include "util/idmap.h"
#include "util/status.h"

#define IDMAP_MIN_CAPACITY 16

static size_t
slot_of(uint64_t id, size_t capacity)
{
    /* Fibonacci hashing: consecutive ids spread over the table */
    return (size_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (capacity - 1);
}

void
idmap_init(struct idmap *m)
{
    m->slots = NULL;
    m->capacity = 0;
    m->count = 0;
}

void
idmap_deinit(struct idmap *m)
{
    free(m->slots);
    idmap_init(m);
}

/* Puts into a table known to have room and not to hold id. */
static void
insert_new(struct idmap_slot *slots, size_t capacity, uint64_t id, void *value)
{
    size_t i = slot_of(id, capacity);
    while (slots[i].id != 0)
        i = (i + 1) & (capacity - 1);
    slots[i].id = id;
    slots[i].value = value;
}

static int
grow(struct idmap *m)
{
    size_t cap = m->capacity ? m->capacity * 2 : IDMAP_MIN_CAPACITY;
    struct idmap_slot *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return MCKV_ENOMEM;
    for (size_t i = 0; i < m->capacity; i++)
        if (m->slots[i].id != 0)
            insert_new(slots, cap, m->slots[i].id, m->slots[i].value);
    free(m->slots);
    m->slots = slots;
    m->capacity = cap;
    return MCKV_OK;
}

static struct idmap_slot *
find(const struct idmap *m, uint64_t id)
{
    if (m->capacity == 0 || id == 0)
        return NULL;
    for (size_t i = slot_of(id, m->capacity);; i = (i + 1) & (m->capacity - 1)) {
        if (m->slots[i].id == id)
            return &m->slots[i];
        if (m->slots[i].id == 0)
            return NULL;
    }
}

int
idmap_put(struct idmap *m, uint64_t id, void *value)
{
    if (id == 0 || value == NULL)
        return MCKV_EINVAL;
    struct idmap_slot *s = find(m, id);
    if (s != NULL) {
        s->value = value;
        return MCKV_OK;
    }
    if ((m->count + 1) * 2 > m->capacity) {
        int rc = grow(m);
        if (rc != MCKV_OK)
            return rc;
    }
    insert_new(m->slots, m->capacity, id, value);
    m->count++;
    return MCKV_OK;
}

void *
idmap_get(const struct idmap *m, uint64_t id)
{
    struct idmap_slot *s = find(m, id);
    return s != NULL ? s->value : NULL;
}

void *
idmap_remove(struct idmap *m, uint64_t id)
{
    struct idmap_slot *s = find(m, id);
    if (s == NULL)
        return NULL;
    void *value = s->value;
    size_t mask = m->capacity - 1;
    size_t hole = (size_t)(s - m->slots);
    /* Backward shift: move later entries of the probe run into the hole
     * when their home slot is not between the hole and where they sit. */
    for (size_t i = (hole + 1) & mask; m->slots[i].id != 0; i = (i + 1) & mask) {
        size_t home = slot_of(m->slots[i].id, m->capacity);
        size_t dist_i = (i - home) & mask, dist_hole = (hole - home) & mask;
        if (dist_hole < dist_i) {
            m->slots[hole] = m->slots[i];
            hole = i;
        }
    }
    m->slots[hole].id = 0;
    m->slots[hole].value = NULL;
    m->count--;
    return value;
}
