/*
 * status.h: the one status enum of the project.
 *
 * MCKV_OK is zero and every error is negative, so `if (rc < 0)` is always the
 * error test. mckv_strerror() names each code for logs and start-up errors.
 */
#ifndef MCKV_UTIL_STATUS_H
#define MCKV_UTIL_STATUS_H

typedef enum mckv_status {
    MCKV_OK = 0,
    MCKV_ENOMEM = -1,     /* allocation failed or memory limit reached */
    MCKV_EINVAL = -2,     /* bad argument or malformed input */
    MCKV_EIO = -3,        /* a system call failed (errno holds why) */
    MCKV_EAGAIN = -4,     /* try again later (queue full, would block) */
    MCKV_ENOTFOUND = -5,  /* no such key or entry */
    MCKV_EEXISTS = -6,    /* entry exists or CAS mismatch */
    MCKV_E2BIG = -7,      /* value larger than item_size_max */
    MCKV_ECLOSED = -8,    /* peer closed or object shut down */
    MCKV_ECORRUPT = -9,   /* the stored data is damaged (not a transient
                             error: retrying cannot help) */
} mckv_status;

/* Returns a static, human-readable description of `status`. Any thread. */
const char *mckv_strerror(int status);

#endif
