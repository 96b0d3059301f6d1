#!/usr/bin/env python3
"""Reads the whole sales view through a TDS server with a Python driver, the way a Python sync script would.

Usage: tds_read.py DRIVER PORT   (DRIVER: pymssql or pytds; login ferry / s3cret, database ventas)
Prints {"rows": N, "seconds": S}. Peers of `ferry bench sqlserver`.
"""
import json
import sys
import time

driver, port = sys.argv[1], int(sys.argv[2])
if driver == "pymssql":
    import pymssql

    connection = pymssql.connect(server="127.0.0.1", port=port, user="ferry", password="s3cret", database="ventas", tds_version="7.3", autocommit=True)
else:
    import pytds

    connection = pytds.connect(server="127.0.0.1", port=port, user="ferry", password="s3cret", database="ventas", autocommit=True)
cursor = connection.cursor()
start = time.perf_counter()
cursor.execute("SELECT * FROM [VW_VENTAS_SYNC]")
rows = 0
while True:
    batch = cursor.fetchmany(1000)
    if not batch:
        break
    rows += len(batch)
seconds = time.perf_counter() - start
connection.close()
print(json.dumps({"rows": rows, "seconds": seconds}))
