"""The extraction benchmark's peers: a PostgreSQL table to one Snappy Parquet file, by ConnectorX + pyarrow (the
common Python way) or by DuckDB's postgres scanner. Prints {"rows": N, "seconds": S}.

    python3 extract_parquet.py connectorx|duckdb HOST PORT USER PASSWORD DATABASE QUERY OUT
"""
import json
import sys
import time

tool, host, port, user, password, database, query, out = sys.argv[1:9]
start = time.time()
if tool == "connectorx":
    import connectorx
    import pyarrow.parquet as pq

    table = connectorx.read_sql(f"postgresql://{user}:{password}@{host}:{port}/{database}", query, return_type="arrow")
    pq.write_table(table, out, compression="snappy")
    rows = table.num_rows
elif tool == "duckdb":
    import duckdb

    con = duckdb.connect()
    con.execute("LOAD postgres")
    con.execute(f"ATTACH 'host={host} port={port} user={user} password={password} dbname={database}' AS pg (TYPE postgres, READ_ONLY)")
    con.execute(f"COPY (SELECT * FROM postgres_query('pg', $${query}$$)) TO '{out}' (FORMAT parquet, COMPRESSION snappy)")
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
else:
    raise SystemExit(f"unknown tool {tool}")
print(json.dumps({"rows": rows, "seconds": time.time() - start}))
