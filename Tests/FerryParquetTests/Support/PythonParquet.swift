import Foundation

@testable import FerryParquet

/// The Parquet libraries everyone else uses (pyarrow, DuckDB, fastparquet), run through python3: they read what
/// Ferry wrote, write what Ferry must read, and say what a file holds, in one canonical JSON form both sides produce.
///
/// Canonical values: integers and booleans as JSON; FLOAT as its bit pattern (a number), DOUBLE as its bit pattern (a
/// string), NaN as "nan"; strings as strings; binary as hex; dates as days since 1970; timestamps and times as
/// "seconds:nanoseconds" since the epoch or midnight; decimals as exact text.
enum PythonParquet {
    /// Runs python3 with `arguments`; returns its exit status and output.
    @discardableResult
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Compares what `readers` (pyarrow, duckdb, fastparquet) read from `file` with the canonical rows in `expected`
    /// (a JSON-lines file). Returns nil when all agree, else what differed.
    static func compare(file: String, expected: String, readers: [String]) throws -> String? {
        let result = try run(["-c", script, "compare", file, expected, readers.joined(separator: ",")])
        return result.status == 0 ? nil : result.output
    }

    /// pyarrow's (or DuckDB's) files for Ferry to read, written into `directory`: returns their names.
    static func writeSamples(into directory: String) throws -> [String] {
        let result = try run(["-c", script, "write", directory])
        guard result.status == 0 else { throw ParquetError("python3 could not write the samples: \(result.output)") }
        return result.output.split(separator: "\n").map(String.init).filter { $0.hasSuffix(".parquet") }
    }

    /// Canonical JSON lines of the rows Ferry reads from `file`.
    static func canonicalLines(_ file: String) throws -> String {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        let reader = try ParquetFileReader(ParquetBytes(bytes))
        var lines = ""
        for index in 0..<reader.rowGroupCount {
            let columns = try reader.readRowGroup(index)
            let values = columns.map { $0.rowValues() }
            for row in 0..<(columns.first?.rowCount ?? 0) {
                lines += canonicalLine(names: reader.schema.columns.map(\.name), values: values.map { $0[row] }) + "\n"
            }
        }
        return lines
    }

    static func canonicalLine(names: [String], values: [ParquetValue]) -> String {
        "{" + zip(names, values).map { JSONString.quote($0) + ":" + canonical($1) }.joined(separator: ",") + "}"
    }

    static func canonical(_ value: ParquetValue) -> String {
        switch value {
        case .null: return "null"
        case .boolean(let value): return value ? "true" : "false"
        case .integer(let value): return "\(value)"
        case .unsigned(let value): return "\(value)"
        case .float(let value): return value.isNaN ? "\"nan\"" : "\(value.bitPattern)"
        case .double(let value): return value.isNaN ? "\"nan\"" : "\"\(value.bitPattern)\""
        case .string(let text): return JSONString.quote(text)
        case .binary(let bytes): return "\"" + bytes.map { String(format: "%02x", $0) }.joined() + "\""
        case .date(let days): return "\(days)"
        case .timestamp(let value, let unit, _), .time(let value, let unit):
            let (seconds, fraction) = ParquetValue.floorDivide(value, unit.perSecond)
            return "\"\(seconds):\(fraction * (1_000_000_000 / unit.perSecond))\""
        case .decimal(let text): return JSONString.quote(text)
        }
    }

    static let script = #"""
        import sys, json, struct, math, os, decimal, datetime, warnings
        warnings.simplefilter('ignore')
        import pyarrow as pa, pyarrow.parquet as pq

        FACTOR = {'s': 10**9, 'ms': 10**6, 'us': 10**3, 'ns': 1}

        def split_ns(total):
            return f"{total // 10**9}:{total % 10**9}"

        def canon_value(typ, v):
            if v is None:
                return None
            if pa.types.is_timestamp(typ) or pa.types.is_time(typ):
                return split_ns(v * FACTOR[typ.unit])
            if pa.types.is_date32(typ):
                return v
            if pa.types.is_decimal(typ):
                return format(v, 'f')
            if pa.types.is_float32(typ):
                return "nan" if math.isnan(v) else struct.unpack('<I', struct.pack('<f', v))[0]
            if pa.types.is_float64(typ):
                return "nan" if math.isnan(v) else str(struct.unpack('<Q', struct.pack('<d', v))[0])
            if pa.types.is_binary(typ) or pa.types.is_large_binary(typ) or pa.types.is_fixed_size_binary(typ):
                return v.hex()
            return v

        def canon_arrow(table):
            columns = []
            for name, col in zip(table.column_names, table.columns):
                typ = col.type
                if pa.types.is_timestamp(typ) or pa.types.is_time64(typ):
                    raw = col.cast(pa.int64()).to_pylist()
                elif pa.types.is_time32(typ) or pa.types.is_date32(typ):
                    raw = col.cast(pa.int32()).to_pylist()
                else:
                    raw = col.to_pylist()
                columns.append((name, [canon_value(typ, v) for v in raw]))
            return [{name: values[r] for name, values in columns} for r in range(table.num_rows)]

        def ts_ns(v):
            import pandas as pd
            t = pd.Timestamp(v)
            return int(t.asm8.view('i8')) * FACTOR[t.unit]

        def canon_fastparquet(path):
            import fastparquet, pandas as pd, numpy as np
            schema = pq.read_schema(path)
            frame = fastparquet.ParquetFile(path).to_pandas()
            rows = []
            for r in range(len(frame)):
                row = {}
                for field in schema:
                    v = frame[field.name].iloc[r]
                    typ = field.type
                    # pandas holds a null float as NaN: a NaN from fastparquet stands for null (the samples hold no NaN).
                    if v is None or v is pd.NaT or v is pd.NA or (isinstance(v, (float, np.floating)) and math.isnan(v)):
                        row[field.name] = None
                        continue
                    if pa.types.is_timestamp(typ):
                        row[field.name] = split_ns(ts_ns(v))
                    elif pa.types.is_date32(typ):
                        row[field.name] = (v - datetime.date(1970, 1, 1)).days if isinstance(v, datetime.date) and not isinstance(v, datetime.datetime) else ts_ns(v) // (86400 * 10**9)
                    elif pa.types.is_decimal(typ):
                        row[field.name] = ('~', float(v))
                    elif pa.types.is_integer(typ):
                        row[field.name] = int(v)
                    elif pa.types.is_boolean(typ):
                        row[field.name] = bool(v)
                    elif pa.types.is_floating(typ):
                        row[field.name] = canon_value(typ, float(v))
                    elif pa.types.is_binary(typ) or pa.types.is_fixed_size_binary(typ):
                        row[field.name] = bytes(v).hex()
                    else:
                        row[field.name] = v
                rows.append(row)
            return rows

        def same(expected, got):
            if isinstance(got, tuple) and got[0] == '~':
                return expected is not None and math.isclose(float(expected), got[1], rel_tol=1e-9)
            return expected == got

        def compare(path, expected_path, readers):
            expected = [json.loads(line) for line in open(expected_path) if line.strip()]
            failures = []
            for reader in readers:
                if reader == 'pyarrow':
                    got = canon_arrow(pq.read_table(path))
                elif reader == 'duckdb':
                    import duckdb
                    got = canon_arrow(duckdb.connect().execute("SELECT * FROM read_parquet(?)", [path]).to_arrow_table())
                elif reader == 'fastparquet':
                    got = canon_fastparquet(path)
                if len(got) != len(expected):
                    failures.append(f"{reader}: {len(got)} rows, expected {len(expected)}")
                    continue
                for r, (e, g) in enumerate(zip(expected, got)):
                    for key in e:
                        if not same(e[key], g.get(key)):
                            failures.append(f"{reader}: row {r} column {key}: got {g.get(key)!r}, expected {e[key]!r}")
                            break
                    if len(failures) > 20:
                        break
            if failures:
                print("\n".join(failures[:40]))
                sys.exit(1)

        def write(directory):
            import duckdb
            n = 5000
            def table(rows):
                import random
                rnd = random.Random(7)
                def maybe(f):
                    return [None if i % 7 == 3 else f(i) for i in range(rows)]
                return pa.table({
                    'b': pa.array(maybe(lambda i: i % 2 == 0), pa.bool_()),
                    'i8': pa.array(maybe(lambda i: (i % 256) - 128), pa.int8()),
                    'i16': pa.array(maybe(lambda i: (i * 37 % 65536) - 32768), pa.int16()),
                    'i32': pa.array(maybe(lambda i: rnd.randint(-2**31, 2**31 - 1)), pa.int32()),
                    'i64': pa.array(maybe(lambda i: rnd.randint(-2**63, 2**63 - 1)), pa.int64()),
                    'u8': pa.array(maybe(lambda i: i % 256), pa.uint8()),
                    'u32': pa.array(maybe(lambda i: rnd.randint(0, 2**32 - 1)), pa.uint32()),
                    'u64': pa.array(maybe(lambda i: rnd.randint(0, 2**64 - 1)), pa.uint64()),
                    'f32': pa.array(maybe(lambda i: rnd.uniform(-1e6, 1e6)), pa.float32()),
                    'f64': pa.array(maybe(lambda i: rnd.uniform(-1e300, 1e300)), pa.float64()),
                    's': pa.array(maybe(lambda i: f"text {i % 50} é漢字" * (i % 4)), pa.string()),
                    'bin': pa.array(maybe(lambda i: bytes([i % 256, 0, 255]) * (i % 3)), pa.binary()),
                    'fixed': pa.array(maybe(lambda i: bytes([i % 256] * 4)), pa.binary(4)),
                    'd': pa.array(maybe(lambda i: datetime.date(1970, 1, 1) + datetime.timedelta(days=i * 13 - 20000)), pa.date32()),
                    'ts': pa.array(maybe(lambda i: i * 1_000_003_007 - 2**40), pa.timestamp('us', tz='UTC')),
                    'tsn': pa.array(maybe(lambda i: i * 1_000_003_007), pa.timestamp('ns')),
                    'tms': pa.array(maybe(lambda i: i * 1_000_003), pa.timestamp('ms')),
                    't': pa.array(maybe(lambda i: i * 17_000_001 % (86400 * 10**6)), pa.time64('us')),
                    'dec9': pa.array(maybe(lambda i: decimal.Decimal(rnd.randint(-10**9 + 1, 10**9 - 1)).scaleb(-2)), pa.decimal128(9, 2)),
                    'dec18': pa.array(maybe(lambda i: decimal.Decimal(rnd.randint(-10**18 + 1, 10**18 - 1)).scaleb(-6)), pa.decimal128(18, 6)),
                    'dec38': pa.array(maybe(lambda i: decimal.Decimal(rnd.randint(-10**38 + 1, 10**38 - 1)).scaleb(-10)), pa.decimal128(38, 10)),
                })
            names = []
            full = table(n)
            for codec in ['snappy', 'zstd', 'gzip', 'none']:
                name = f"pyarrow-{codec}.parquet"
                pq.write_table(full, os.path.join(directory, name), compression=codec)
                names.append(name)
            variants = {
                'pyarrow-pages.parquet': dict(data_page_size=2048, row_group_size=700, compression='snappy'),
                'pyarrow-v2pages.parquet': dict(data_page_version='2.0', data_page_size=4096, compression='zstd', use_dictionary=['s', 'i32']),
                'pyarrow-nodict.parquet': dict(use_dictionary=False, compression='snappy'),
                'pyarrow-dictfallback.parquet': dict(dictionary_pagesize_limit=512, compression='snappy'),
            }
            for name, options in variants.items():
                pq.write_table(full, os.path.join(directory, name), **options)
                names.append(name)
            pq.write_table(table(0), os.path.join(directory, 'pyarrow-0rows.parquet'))
            pq.write_table(table(1), os.path.join(directory, 'pyarrow-1row.parquet'))
            names += ['pyarrow-0rows.parquet', 'pyarrow-1row.parquet']
            con = duckdb.connect()
            con.register('sample', full)
            for codec in ['snappy', 'zstd', 'gzip', 'uncompressed']:
                name = f"duckdb-{codec}.parquet"
                con.execute(f"COPY (SELECT * FROM sample) TO '{os.path.join(directory, name)}' (FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE 2048)")
                names.append(name)
            con.execute(f"COPY (SELECT * FROM sample LIMIT 0) TO '{os.path.join(directory, 'duckdb-0rows.parquet')}' (FORMAT parquet)")
            con.execute(f"COPY (SELECT * FROM sample LIMIT 1) TO '{os.path.join(directory, 'duckdb-1row.parquet')}' (FORMAT parquet)")
            names += ['duckdb-0rows.parquet', 'duckdb-1row.parquet']
            print("\n".join(names))

        if sys.argv[1] == 'compare':
            compare(sys.argv[2], sys.argv[3], sys.argv[4].split(','))
        elif sys.argv[1] == 'write':
            write(sys.argv[2])
        """#
}
