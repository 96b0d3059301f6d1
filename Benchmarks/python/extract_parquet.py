"""The extraction benchmark's peers: a table to one Snappy Parquet file, from PostgreSQL by ConnectorX + pyarrow (the
common Python way) or by DuckDB's postgres scanner, from SQL Server by pymssql + pyarrow (the original bridge's driver,
rows streamed in batches of 100,000 into a ParquetWriter, the schema inferred from the first batch). Prints
{"rows": N, "seconds": S}.

    python3 extract_parquet.py connectorx|duckdb|pymssql HOST PORT USER PASSWORD DATABASE QUERY OUT
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
    try:
        # The extension from PyPI (duckdb-extension-postgres-scanner, built for this DuckDB version): no download.
        import os
        import duckdb_extension_postgres_scanner as wheel

        path = os.path.join(os.path.dirname(wheel.__file__), "extensions", "v" + duckdb.__version__, "postgres_scanner.duckdb_extension")
        con.execute(f"LOAD '{path}'")
    except ImportError:
        con.execute("LOAD postgres")
    con.execute(f"ATTACH 'host={host} port={port} user={user} password={password} dbname={database}' AS pg (TYPE postgres, READ_ONLY)")
    con.execute(f"COPY (SELECT * FROM postgres_query('pg', $${query}$$)) TO '{out}' (FORMAT parquet, COMPRESSION snappy)")
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
elif tool == "pymssql":
    import pymssql
    import pyarrow as pa
    import pyarrow.parquet as pq

    connection = pymssql.connect(server=host, port=int(port), user=user, password=password, database=database, tds_version="7.3")
    cursor = connection.cursor()
    cursor.execute(query)
    names = [column[0] for column in cursor.description]
    writer = None
    rows = 0
    while True:
        batch = cursor.fetchmany(100_000)
        if not batch:
            break
        columns = list(zip(*batch))
        if writer is None:
            table = pa.table({name: pa.array(values) for name, values in zip(names, columns)})
            writer = pq.ParquetWriter(out, table.schema, compression="snappy")
        else:
            table = pa.table({field.name: pa.array(values, type=field.type) for field, values in zip(writer.schema, columns)})
        writer.write_table(table)
        rows += len(batch)
    if writer is not None:
        writer.close()
    connection.close()
else:
    raise SystemExit(f"unknown tool {tool}")
print(json.dumps({"rows": rows, "seconds": time.time() - start}))
