#!/usr/bin/python3
"""The original design of seeds/01, measured beside Ferry by `ferry bench sync`.

Producer: SELECT rows WHERE watermark > last_sync, one LPUSH of a JSON record per row, then SET the timestamp.
Consumer: BRPOP one record at a time, batches of 50, psycopg2 executemany of INSERT ... ON CONFLICT DO UPDATE.
The source is PostgreSQL here (SQL Server cannot run on this machine); the rest is as the original wrote it.

Usage: original_sync.py SOURCE_DSN TARGET_DSN REDIS_PORT REDIS_PASSWORD SOURCE_TABLE ROWS
Prints one JSON line: {"rows": N, "seconds": S}.
"""
import json
import sys
import threading
import time

import psycopg2
import redis

source_dsn, target_dsn, redis_port, redis_password, source_table, rows = sys.argv[1:7]
rows = int(rows)
queue = "bench_python:change_queue"
r = redis.Redis(host="127.0.0.1", port=int(redis_port), password=redis_password or None)
r.delete(queue, "bench_python:last_sync_timestamp")

target = psycopg2.connect(target_dsn)
with target.cursor() as cursor:
    cursor.execute("DROP TABLE IF EXISTS py_datos_vista")
    cursor.execute(
        """CREATE TABLE py_datos_vista (sync_id serial, conduce varchar(20) PRIMARY KEY, fecha_emision date,
           facturado boolean, numero_factura varchar(20), codigo_cliente varchar(20), cliente text,
           ultima_modificacion timestamp, created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now())"""
    )
target.commit()

UPSERT = """INSERT INTO py_datos_vista (conduce, fecha_emision, facturado, numero_factura, codigo_cliente, cliente,
              ultima_modificacion) VALUES (%(CONDUCE)s, %(FECHA_EMISION)s, %(FACTURADO)s, %(NUMERO_FACTURA)s,
              %(CODIGO_CLIENTE)s, %(CLIENTE)s, %(ULTIMA_MODIFICACION)s)
            ON CONFLICT (conduce) DO UPDATE SET fecha_emision = EXCLUDED.fecha_emision, facturado = EXCLUDED.facturado,
              numero_factura = EXCLUDED.numero_factura, codigo_cliente = EXCLUDED.codigo_cliente,
              cliente = EXCLUDED.cliente, ultima_modificacion = EXCLUDED.ultima_modificacion, updated_at = now()"""


def producer():
    source = psycopg2.connect(source_dsn)
    last_sync = r.get("bench_python:last_sync_timestamp")
    last_sync = last_sync.decode() if last_sync else "1900-01-01"
    with source.cursor(name="changes") as cursor:
        cursor.itersize = 5000
        cursor.execute(
            f'SELECT * FROM {source_table} WHERE "ULTIMA_MODIFICACION" > %s ORDER BY "ULTIMA_MODIFICACION" LIMIT %s',
            (last_sync, rows),
        )
        columns = None
        newest = last_sync
        for record in cursor:
            if columns is None:
                columns = [d[0] for d in cursor.description]
            data = dict(zip(columns, record))
            newest = str(data["ULTIMA_MODIFICACION"])
            r.lpush(queue, json.dumps(data, default=str))
        r.set("bench_python:last_sync_timestamp", newest)
    source.close()


def consumer(done):
    applied = 0
    batch = []
    with target.cursor() as cursor:
        while applied < rows:
            item = r.brpop(queue, timeout=5)
            if item is None:
                break
            batch.append(json.loads(item[1]))
            if len(batch) == 50 or applied + len(batch) == rows:
                cursor.executemany(UPSERT, batch)
                target.commit()
                applied += len(batch)
                batch = []
    done.append(applied)


start = time.monotonic()
done = []
threads = [threading.Thread(target=producer), threading.Thread(target=consumer, args=(done,))]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
elapsed = time.monotonic() - start
r.delete(queue, "bench_python:last_sync_timestamp")
print(json.dumps({"rows": done[0] if done else 0, "seconds": elapsed}))
