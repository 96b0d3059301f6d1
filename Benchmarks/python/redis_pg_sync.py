#!/usr/bin/python3
"""The redis-py + psycopg2 peer of `ferry bench redis-sync`: the original service's approach, done well.

usage: redis_pg_sync.py streams|keys DSN REDIS_PORT REDIS_PASSWORD DB NAME_OR_PATTERN SCHEMA
Streams: XREADGROUP batches of 1000, execute_values INSERT ... ON CONFLICT DO NOTHING, commit, XACK.
Keys: SCAN 1000 at a time, TYPE + value in pipelines, execute_values upsert, commit.
Prints {"count": N, "seconds": S}.
"""
import json
import sys
import time

import psycopg2
import psycopg2.extras
import redis

mode, dsn, port, password, db, name, schema = sys.argv[1:8]
r = redis.Redis(host="127.0.0.1", port=int(port), password=password or None, db=int(db))
pg = psycopg2.connect(dsn)
cur = pg.cursor()
cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
cur.execute(
    f"""CREATE TABLE IF NOT EXISTS {schema}.redis_streams (id bigserial PRIMARY KEY, redis_db int NOT NULL, stream_key text NOT NULL,
    message_id text NOT NULL, data jsonb NOT NULL, "timestamp" timestamptz NOT NULL, synced_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (message_id, stream_key, redis_db))"""
)
# The same indexes as Ferry's tables (the seed's lookups on message_id and redis_key are the unique constraints).
cur.execute(f"""CREATE INDEX IF NOT EXISTS redis_streams_stream_time ON {schema}.redis_streams (stream_key, "timestamp" DESC)""")
cur.execute(
    f"""CREATE TABLE IF NOT EXISTS {schema}.redis_key_values (id bigserial PRIMARY KEY, redis_db int NOT NULL, redis_key text NOT NULL,
    redis_type text NOT NULL, value jsonb, ttl_ms bigint, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz,
    UNIQUE (redis_key, redis_db))"""
)
pg.commit()

start = time.monotonic()
count = 0
if mode == "streams":
    try:
        r.xgroup_create(name, "py", id="0")
    except redis.ResponseError:
        pass
    while True:
        reply = r.xreadgroup("py", "c1", {name: ">"}, count=1000)
        if not reply or not reply[0][1]:
            break
        entries = reply[0][1]
        rows = []
        for entry_id, fields in entries:
            data = {k.decode(): v.decode() for k, v in fields.items()}
            ms = int(entry_id.split(b"-")[0])
            rows.append((int(db), name, entry_id.decode(), json.dumps(data), ms / 1000.0))
        psycopg2.extras.execute_values(
            cur,
            f"""INSERT INTO {schema}.redis_streams (redis_db, stream_key, message_id, data, "timestamp")
            VALUES %s ON CONFLICT (redis_db, stream_key, message_id) DO NOTHING""",
            rows,
            template="(%s, %s, %s, %s::jsonb, to_timestamp(%s))",
            page_size=1000,
        )
        pg.commit()
        r.xack(name, "py", *[e[0] for e in entries])
        count += len(entries)
else:
    cursor = 0
    while True:
        cursor, keys = r.scan(cursor=cursor, match=name, count=1000)
        if keys:
            pipe = r.pipeline(transaction=False)
            for key in keys:
                pipe.type(key)
                pipe.pttl(key)
            meta = pipe.execute()
            pipe = r.pipeline(transaction=False)
            types = []
            for i, key in enumerate(keys):
                t = meta[2 * i].decode()
                types.append((key, t, meta[2 * i + 1]))
                if t == "string":
                    pipe.get(key)
                elif t == "hash":
                    pipe.hgetall(key)
                elif t == "list":
                    pipe.lrange(key, 0, -1)
                elif t == "set":
                    pipe.smembers(key)
                elif t == "zset":
                    pipe.zrange(key, 0, -1, withscores=True)
            values = pipe.execute()
            rows = []
            for (key, t, ttl), value in zip(types, values):
                if t == "string":
                    v = value.decode()
                elif t == "hash":
                    v = {k.decode(): x.decode() for k, x in value.items()}
                elif t == "list":
                    v = [x.decode() for x in value]
                elif t == "set":
                    v = sorted(x.decode() for x in value)
                else:
                    v = {m.decode(): s for m, s in value}
                rows.append((int(db), key.decode(), t, json.dumps(v), ttl if ttl >= 0 else None))
            psycopg2.extras.execute_values(
                cur,
                f"""INSERT INTO {schema}.redis_key_values AS t (redis_db, redis_key, redis_type, value, ttl_ms) VALUES %s
                ON CONFLICT (redis_db, redis_key) DO UPDATE SET value = EXCLUDED.value, redis_type = EXCLUDED.redis_type,
                ttl_ms = EXCLUDED.ttl_ms, updated_at = now() WHERE t.value IS DISTINCT FROM EXCLUDED.value""",
                rows,
                template="(%s, %s, %s, %s::jsonb, %s)",
                page_size=1000,
            )
            pg.commit()
            count += len(rows)
        if cursor == 0:
            break
print(json.dumps({"count": count, "seconds": time.monotonic() - start}))
