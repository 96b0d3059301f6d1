// The compression libraries of backups, archived WAL and Parquet files (Debian: libzstd-dev, liblz4-dev, zlib1g-dev,
// libsnappy-dev).
#ifndef FERRY_CCOMPRESSION_SHIM_H
#define FERRY_CCOMPRESSION_SHIM_H
#include <zstd.h>
#include <lz4frame.h>
#include <zlib.h>
#include <snappy-c.h>
#endif
