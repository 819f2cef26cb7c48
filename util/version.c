#include <config.h>

#include "util/version.h"

const char mckv_version[] = "1.6.0-mckv-" PACKAGE_VERSION;
