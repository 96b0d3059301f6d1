// Zstandard (Debian: libzstd-dev): backups' and archived WAL's default compression.
#ifndef FERRY_CZSTD_SHIM_H
#define FERRY_CZSTD_SHIM_H
#include <zstd.h>
#endif
