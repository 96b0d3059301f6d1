// FreeTDS's DB-Library (Debian: freetds-dev), the library under pymssql: the SQL Server client's transport.
#ifndef FERRY_CFREETDS_SHIM_H
#define FERRY_CFREETDS_SHIM_H
#include <sybfront.h>
#include <sybdb.h>

// The type number of uniqueidentifier, which sybdb.h leaves to FreeTDS's internal headers.
#define FERRY_SYBUNIQUE 36
// nvarchar as TDS 7 sends it (0xE7, UTF-16 with a 2-byte length or chunked for (max)); sybdb.h's SYBNVARCHAR (0x67)
// is Sybase's, with a 1-byte length.
#define FERRY_XSYBNVARCHAR 231
#endif
