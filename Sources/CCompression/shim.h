// The compression libraries of backups and archived WAL (Debian: libzstd-dev, liblz4-dev, zlib1g-dev).
#ifndef FERRY_CCOMPRESSION_SHIM_H
#define FERRY_CCOMPRESSION_SHIM_H
#include <zstd.h>
#include <lz4frame.h>
#include <zlib.h>
#endif
