// FreeTDS's DB-Library (Debian: freetds-dev), the library under pymssql: the SQL Server client's transport.
#ifndef FERRY_CFREETDS_SHIM_H
#define FERRY_CFREETDS_SHIM_H
#include <sybfront.h>
#include <sybdb.h>

// The type number of uniqueidentifier, which sybdb.h leaves to FreeTDS's internal headers.
#define FERRY_SYBUNIQUE 36
#endif
