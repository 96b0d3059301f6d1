#!/usr/bin/env bash
# Prepares a Debian 12 machine for building, testing and running Ferry. Idempotent: installs only what is
# missing, and skips `apt-get update` when nothing is.
set -euo pipefail

packages=(
  postgresql-15 postgresql-client-15   # sandbox, tests and demo servers (PostgreSQL 15)
  redis-server redis-tools             # Redis 7: the durable queue
  etcd-server etcd-client              # consensus for the HA cluster
  python3 python3-redis python3-psycopg2  # the original Python design, measured beside Ferry in benchmarks
  freetds-dev                          # FreeTDS's DB-Library: Ferry's SQL Server client is built on it
  libzstd-dev liblz4-dev zlib1g-dev    # zstd, lz4, gzip: backups' and archived WAL's compression
  libsnappy-dev                        # Snappy: Parquet's default compression (pyarrow, Spark, DuckDB)
  python3-pip freetds-bin python3-openssl  # the TDS emulator's independent clients in the tests: FreeTDS's tsql, python-tds (and its TLS)
  ca-certificates git make
  openssl curl                         # the tests' self-signed certificates, and an independent HTTPS client for ferry run's TLS
  chromium                             # a real headless browser for the status page's test (/ui)
)

# `scripts/setup.sh bench` also installs the peers the benchmarks measure beside Ferry.
if [ "${1:-}" = "bench" ]; then
  packages+=(patroni)   # the HA benchmark's peer (Debian's Patroni on the same etcd and PostgreSQL)
  packages+=(pgbackrest)   # the backup benchmark's peer (Debian's pgBackRest 2.45, on the same PostgreSQL)
  packages+=(python3-pymssql)   # the SQL Server benchmark's peer (pymssql, FreeTDS underneath like Ferry's client)
  packages+=(time)   # /usr/bin/time: the extraction benchmark's wall, CPU and peak memory per process
  packages+=(wrk)    # the API benchmark's load (ferry bench api)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  # Debian's packages start their services on install where systemd runs; Ferry uses private instances on
  # free ports, so the system ones are neither needed nor disturbed.
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# python-tds (PyPI; Debian has no package): with FreeTDS's tsql, the client that is not Ferry's and checks the TDS
# emulator the SQL Server tests run against.
if ! python3 -c "import pytds" 2>/dev/null; then
  echo "setup: installing python-tds (PyPI)"
  python3 -m pip install -q python-tds 2>/dev/null || python3 -m pip install -q --break-system-packages python-tds
fi
# pyOpenSSL: python-tds's TLS, for the emulator's forced-encryption test.
if ! python3 -c "import OpenSSL" 2>/dev/null; then
  echo "setup: installing pyOpenSSL (PyPI)"
  python3 -m pip install -q pyOpenSSL 2>/dev/null || python3 -m pip install -q --break-system-packages pyOpenSSL
fi

# moto's S3 server (PyPI): the S3-compatible store the S3 repository's tests run against (its conditional writes and
# deletes, If-None-Match and If-Match, need moto 5.2).
if ! python3 -c "import moto, moto.server; assert tuple(map(int, moto.__version__.split('.')[:2])) >= (5, 2)" 2>/dev/null; then
  echo "setup: installing moto[server] (PyPI)"
  python3 -m pip install -q "moto[server]>=5.2,<6" 2>/dev/null || python3 -m pip install -q --break-system-packages "moto[server]>=5.2,<6"
fi

# pyarrow, DuckDB and fastparquet (PyPI): the Parquet libraries everyone else uses, which must read what Ferry writes
# and write what Ferry must read, in the Parquet tests.
if ! python3 -c "import pyarrow, duckdb, fastparquet" 2>/dev/null; then
  echo "setup: installing pyarrow, duckdb, fastparquet (PyPI)"
  python3 -m pip install -q pyarrow duckdb fastparquet 2>/dev/null || python3 -m pip install -q --break-system-packages pyarrow duckdb fastparquet
fi

# databricks-sdk (PyPI): Databricks' own Python client, which reads and writes files through the Databricks emulator in
# the Databricks Volumes tests, so the emulator follows the Files API and not only Ferry's client.
if ! python3 -c "import databricks.sdk" 2>/dev/null; then
  echo "setup: installing databricks-sdk (PyPI)"
  python3 -m pip install -q databricks-sdk 2>/dev/null || python3 -m pip install -q --break-system-packages databricks-sdk
fi

# schemathesis (PyPI): generates requests from openapi.yaml against the live API in the tests (pinned: its checks and
# flags change between releases).
if ! python3 -c "import schemathesis; assert schemathesis.__version__ == '4.32.5'" 2>/dev/null; then
  echo "setup: installing schemathesis 4.32.5 (PyPI)"
  python3 -m pip install -q "schemathesis==4.32.5" 2>/dev/null || python3 -m pip install -q --break-system-packages "schemathesis==4.32.5"
fi

# The extraction benchmark's peers: ConnectorX + pyarrow, pymssql + pyarrow, and DuckDB's postgres scanner. DuckDB
# would download its extension from its own site; PyPI carries it too, built for one DuckDB version: the pair is pinned.
if [ "${1:-}" = "bench" ]; then
  for module in connectorx pyarrow pymssql; do
    if ! /usr/bin/python3 -c "import $module" 2>/dev/null; then
      echo "setup: installing $module for /usr/bin/python3 (PyPI)"
      /usr/bin/python3 -m pip install -q --break-system-packages "$module"
    fi
  done
  if ! /usr/bin/python3 -c "import duckdb, duckdb_extension_postgres_scanner; assert duckdb.__version__ == '1.5.5'" 2>/dev/null; then
    echo "setup: installing duckdb 1.5.5 and its postgres extension for /usr/bin/python3 (PyPI)"
    /usr/bin/python3 -m pip install -q --break-system-packages "duckdb==1.5.5" "duckdb-extension-postgres-scanner==1.5.5" \
      || echo "setup: DuckDB's postgres extension could not be installed; ferry bench extract skips that peer"
  fi
fi

# The benchmarks' Python peers run on Debian's python3 (/usr/bin/python3): python-tds for it too.
if [ "${1:-}" = "bench" ] && ! /usr/bin/python3 -c "import pytds" 2>/dev/null; then
  echo "setup: installing python-tds for /usr/bin/python3 (PyPI)"
  /usr/bin/python3 -m pip install -q --break-system-packages python-tds
fi

if ! command -v swift >/dev/null; then
  for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
    if [ -x "$candidate/swift" ]; then
      echo "setup: swift is at $candidate but not on PATH; add it: export PATH=$candidate:\$PATH" >&2
      exit 1
    fi
  done
  echo "setup: Swift 6.1 or later is required; install it from https://www.swift.org/install/linux/ (Debian 12)" >&2
  exit 1
fi

version=$(swift --version 2>/dev/null | sed -n 's/.*Swift version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p' | head -1)
read -r major minor <<<"${version:-0 0}"
if [ "$major" -lt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -lt 2 ]; }; then
  echo "setup: Swift 6.2 or later is required (found ${major}.${minor}); see https://www.swift.org/install/linux/" >&2
  exit 1
fi
echo "setup: ok ($(swift --version 2>/dev/null | head -1))"
