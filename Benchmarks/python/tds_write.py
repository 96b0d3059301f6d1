#!/usr/bin/env python3
"""Writes N rows into an empty table through a TDS server with a Python driver, the way a Python bridge script would.

Usage: tds_write.py DRIVER PORT TABLE ROWS   (DRIVER: pytds or pymssql; login ferry / s3cret, database ventas)
pytds loads with its bulk copy (copy_to: INSERT BULK and a BULK LOAD stream, typed columns); pymssql 2.4 has no bulk
copy, so it inserts with executemany in one transaction, as the original scripts did.
Rows: id, cliente, monto, momento: the same values `ferry bench sqlserver` writes (row i: id i,
cliente 'cliente <i % 997>', monto (i % 100000) / 100, momento 2026-01-01 + i seconds).
Prints {"rows": N, "seconds": S}. Peers of `ferry bench sqlserver`.
"""
import datetime
import decimal
import json
import sys
import time

driver, port, table, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
base = datetime.datetime(2026, 1, 1)
rows = [
    (i, "cliente %d" % (i % 997), decimal.Decimal(i % 100000) / 100, base + datetime.timedelta(seconds=i))
    for i in range(1, count + 1)
]
if driver == "pytds":
    import pytds
    from pytds.tds_base import Column
    from pytds.tds_types import DateTime2Type, DecimalType, IntType, NVarCharType

    connection = pytds.connect(server="127.0.0.1", port=port, user="ferry", password="s3cret", database="ventas", autocommit=True)
    columns = [
        Column("id", IntType(), 0),
        Column("cliente", NVarCharType(size=50)),
        Column("monto", DecimalType(precision=12, scale=2)),
        Column("momento", DateTime2Type(precision=6)),
    ]
    cursor = connection.cursor()
    start = time.perf_counter()
    cursor.copy_to(table_or_view=table, columns=columns, data=rows)
    seconds = time.perf_counter() - start
else:
    import pymssql

    connection = pymssql.connect(server="127.0.0.1", port=port, user="ferry", password="s3cret", database="ventas", tds_version="7.3")
    cursor = connection.cursor()
    start = time.perf_counter()
    cursor.executemany("INSERT INTO [%s] ([id], [cliente], [monto], [momento]) VALUES (%%d, %%s, %%s, %%s)" % table, rows)
    connection.commit()
    seconds = time.perf_counter() - start
connection.close()
print(json.dumps({"rows": count, "seconds": seconds}))
