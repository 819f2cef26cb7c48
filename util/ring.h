/*
 * ring.h: a single-producer/single-consumer queue of pointers between two
 * threads, with a notify fd that wakes the consumer's event loop.
 *
 * The queue is Concurrency Kit's ck_ring in its SPSC flavour: one producer
 * thread and one consumer thread, no locks, no CAS. The notify fd (an eventfd)
 * is written only when a push finds the ring otherwise empty, so a busy
 * consumer costs the producer no system call.
 *
 * Wake-up protocol (why nothing is ever stranded in the ring):
 *   producer: enqueue (release) ; full fence ; if size == 1 -> write eventfd
 *   consumer: read eventfd ; pop until empty ; full fence ; re-check size
 * The two fences form a Dekker pair: either the consumer's re-check sees the
 * new entry, or the producer sees the consumer's head past every earlier entry
 * (size == 1) and writes the eventfd.
 */
#ifndef MCKV_UTIL_RING_H
#define MCKV_UTIL_RING_H

#include <stdbool.h>
#include <ck_ring.h>

struct ring {
    ck_ring_t ring;
    ck_ring_buffer_t *slots;
    unsigned capacity;   /* power of two; holds capacity - 1 entries */
    int notify_fd;       /* eventfd, readable when the consumer should look */
};

/* Initialises `r` with room for at least `min_entries`. Returns 0 or a
 * negative mckv_status. Any thread, before the ring is shared. */
int ring_init(struct ring *r, unsigned min_entries);
void ring_deinit(struct ring *r);

/* Producer thread only. Returns false when the ring is full (nothing queued). */
bool ring_push(struct ring *r, void *entry);

/* Producer thread only: like ring_push() but never writes the notify fd
 * and has no fence. For a consumer that says by other means when it needs
 * a wake-up (the flusher: only while it sleeps); the producer then orders
 * its push before reading that state and calls ring_wake(). */
bool ring_push_quiet(struct ring *r, void *entry);

/* Any thread: writes the notify fd (the consumer's poll wakes up). */
void ring_wake(struct ring *r);

/* Any number of producer threads (the ring is then MPSC). Always writes the
 * notify fd: with several producers the "size == 1" test of ring_push()
 * could be passed by none of them. Use for rare events only. */
bool ring_push_mp(struct ring *r, void *entry);

/* Consumer thread only. Returns false when the ring is empty. */
bool ring_pop(struct ring *r, void **entry);

/* Consumer thread only: clears the notify fd. Call before draining. */
void ring_consume_notify(struct ring *r);

/* Consumer thread only: true when the ring is empty after a full fence; call
 * when a drain loop found nothing, to close the race described above. */
bool ring_empty_fenced(struct ring *r);

/* Number of queued entries (approximate from a third thread). */
unsigned ring_size(struct ring *r);

#endif
