/* status.c: names for the project-wide status codes (see status.h). */
#include <config.h>

#include "util/status.h"

const char *
mckv_strerror(int status)
{
    switch ((mckv_status)status) {
    case MCKV_OK: return "success";
    case MCKV_ENOMEM: return "out of memory";
    case MCKV_EINVAL: return "invalid argument";
    case MCKV_EIO: return "I/O error";
    case MCKV_EAGAIN: return "resource temporarily unavailable";
    case MCKV_ENOTFOUND: return "not found";
    case MCKV_EEXISTS: return "already exists";
    case MCKV_E2BIG: return "too large";
    case MCKV_ECLOSED: return "closed";
    case MCKV_ECORRUPT: return "database is damaged";
    }
    return "unknown error";
}
