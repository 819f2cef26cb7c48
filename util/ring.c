/* ring.c: see ring.h for the wake-up protocol. */
#include <config.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/ring.h"
#include "util/status.h"

static void ring_notify(struct ring *r);

/*
 * ck_ring publishes entries with inline-asm stores and compiler-only fences
 * that ThreadSanitizer cannot see, so without help every object handed
 * through a ring (an item, a connection) would look raced. Under TSan each
 * push releases and each pop acquires the ring itself: the happens-before
 * edge the hardware ordering already provides, made visible.
 */
#if defined(__SANITIZE_THREAD__)
#define RING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RING_TSAN 1
#endif
#endif
#ifdef RING_TSAN
#include <sanitizer/tsan_interface.h>
#define ring_tsan_release(r) __tsan_release(r)
#define ring_tsan_acquire(r) __tsan_acquire(r)
#else
#define ring_tsan_release(r) ((void)(r))
#define ring_tsan_acquire(r) ((void)(r))
#endif

int
ring_init(struct ring *r, unsigned min_entries)
{
    unsigned cap = 4;
    while (cap < min_entries + 1)
        cap <<= 1;
    r->slots = calloc(cap, sizeof(*r->slots));
    if (r->slots == NULL)
        return MCKV_ENOMEM;
    r->capacity = cap;
    ck_ring_init(&r->ring, cap);
    r->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->notify_fd < 0) {
        free(r->slots);
        r->slots = NULL;
        return MCKV_EIO;
    }
    return MCKV_OK;
}

void
ring_deinit(struct ring *r)
{
    if (r->notify_fd >= 0)
        close(r->notify_fd);
    r->notify_fd = -1;
    free(r->slots);
    r->slots = NULL;
}

bool
ring_push(struct ring *r, void *entry)
{
    ring_tsan_release(r);
    if (!ck_ring_enqueue_spsc(&r->ring, r->slots, entry))
        return false;
    /* Orders our publication of the entry (p_tail store) before our read of
     * the consumer's head; pairs with the fence in ring_empty_fenced(). */
    atomic_thread_fence(memory_order_seq_cst);
    if (ck_ring_size(&r->ring) == 1)
        ring_notify(r);   /* EAGAIN (counter saturated) is fine: signalled */
    return true;
}

bool
ring_push_quiet(struct ring *r, void *entry)
{
    ring_tsan_release(r);
    return ck_ring_enqueue_spsc(&r->ring, r->slots, entry);
}

void
ring_wake(struct ring *r)
{
    ring_notify(r);
}

static void
ring_notify(struct ring *r)
{
    uint64_t one = 1;
    ssize_t w;
    do {
        w = write(r->notify_fd, &one, sizeof(one));
    } while (w < 0 && errno == EINTR);
}

bool
ring_push_mp(struct ring *r, void *entry)
{
    ring_tsan_release(r);
    if (!ck_ring_enqueue_mpsc(&r->ring, r->slots, entry))
        return false;
    ring_notify(r);
    return true;
}

bool
ring_pop(struct ring *r, void **entry)
{
    if (!ck_ring_dequeue_spsc(&r->ring, r->slots, entry))
        return false;
    ring_tsan_acquire(r);
    return true;
}

void
ring_consume_notify(struct ring *r)
{
    uint64_t v;
    ssize_t n;
    do {
        n = read(r->notify_fd, &v, sizeof(v));
    } while (n < 0 && errno == EINTR);
}

bool
ring_empty_fenced(struct ring *r)
{
    /* Orders our last head store (the pop that emptied the ring) before our
     * read of the producer's tail; pairs with the fence in ring_push(). */
    atomic_thread_fence(memory_order_seq_cst);
    return ck_ring_size(&r->ring) == 0;
}

unsigned
ring_size(struct ring *r)
{
    return ck_ring_size(&r->ring);
}
