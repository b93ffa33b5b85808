#!/usr/bin/env python3
"""Reads a kafkatos3 Parquet export the way users will: with pyarrow's dataset reader and with
DuckDB, both with Hive partitioning. Prints one JSON document on stdout:

  {"pyarrow": [row, ...], "duckdb": [row, ...], "columns": {name: type},
   "date_query": {"date": D, "rows": n, "files_read": k, "files": total, "filenames": [...]}}

A row is [topic, partition, offset, timestamp_ms, timestamp_type, key_hex, value_hex,
[[header_key, value_hex], ...], value_text, date, hour]; bytes as hex, null as null.

usage: read_export.py ROOT DATE
"""
import json
import re
import sys

import duckdb
import pyarrow.compute as pc
import pyarrow.dataset as ds


def hexed(value):
    return None if value is None else bytes(value).hex()


def headers_of(headers):
    return [[h["key"], hexed(h["value"])] for h in headers]


def read_pyarrow(root):
    dataset = ds.dataset(root, format="parquet", partitioning="hive")
    table = dataset.to_table()
    columns = {field.name: str(field.type) for field in table.schema}
    cols = {name: table.column(name) for name in table.column_names}
    millis = pc.cast(cols["timestamp"], "int64").to_pylist()
    rows = []
    for i in range(table.num_rows):
        date = cols["date"][i].as_py()
        rows.append([
            cols["topic"][i].as_py(),
            cols["partition"][i].as_py(),
            cols["offset"][i].as_py(),
            millis[i],
            cols["timestamp_type"][i].as_py(),
            hexed(cols["key"][i].as_py()),
            hexed(cols["value"][i].as_py()),
            headers_of(cols["headers"][i].as_py()),
            cols["value_text"][i].as_py() if "value_text" in cols else None,
            None if date is None else str(date),
            None if cols["hour"][i].as_py() is None else int(cols["hour"][i].as_py()),
        ])
    return rows, columns


def read_duckdb(con, files):
    query = f"""
        SELECT topic, "partition", "offset", epoch_ms("timestamp"), timestamp_type, "key", "value", headers,
               {'value_text' if has_value_text(con, files) else 'NULL'}, CAST("date" AS VARCHAR), CAST("hour" AS INTEGER)
        FROM read_parquet('{files}', hive_partitioning = true)
    """
    rows = []
    for r in con.sql(query).fetchall():
        rows.append([r[0], r[1], r[2], r[3], r[4], hexed(r[5]), hexed(r[6]), headers_of(r[7]), r[8], r[9], r[10]])
    return rows


def has_value_text(con, files):
    names = [d[0] for d in con.sql(f"DESCRIBE SELECT * FROM read_parquet('{files}', hive_partitioning = true)").fetchall()]
    return "value_text" in names


def date_query(con, files, date):
    """What DuckDB reads for one day: the plan's file count, and the rows."""
    where = f"FROM read_parquet('{files}', hive_partitioning = true) WHERE \"date\" = DATE '{date}'"
    plan = "\n".join(str(row[1]) for row in con.sql(f"EXPLAIN ANALYZE SELECT count(*) {where}").fetchall())
    read = re.search(r"Total Files Read:\s*(\d+)", plan)
    scanning = re.search(r"Scanning Files:\s*(\d+)/(\d+)", plan)
    rows = con.sql(f"SELECT count(*) {where}").fetchall()[0][0]
    names = [r[0] for r in con.sql(f"SELECT DISTINCT filename FROM read_parquet('{files}', hive_partitioning = true, filename = true) WHERE \"date\" = DATE '{date}'").fetchall()]
    return {
        "date": date,
        "rows": rows,
        "files_read": int(read.group(1)) if read else None,
        "files": int(scanning.group(2)) if scanning else None,
        "filenames": sorted(names),
        "plan": plan,
    }


def main():
    root, date = sys.argv[1], sys.argv[2]
    files = f"{root.rstrip('/')}/**/*.parquet"
    con = duckdb.connect()
    arrow_rows, columns = read_pyarrow(root)
    out = {
        "pyarrow": arrow_rows,
        "duckdb": read_duckdb(con, files),
        "columns": columns,
        "date_query": date_query(con, files, date),
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
