"""Flight SQL clients against a running `civlink serve`, through ADBC.

Run by tests/it/python_clients.rs, which starts the server, ingests the
dataset and creates the tokens. Plain Python (no pytest): every check runs,
failures are printed, the last line is `N passed, M failed` and the exit
status is non-zero when anything failed.

Environment:
  CIVLINK_FLIGHT_URI        grpc://127.0.0.1:PORT
  CIVLINK_DATASET           department.table, e.g. minzheng.test_residents
  CIVLINK_COUNTY_USER       the county-level principal's name
  CIVLINK_COUNTY_TOKEN      its token
  CIVLINK_COUNTY_ROWS       rows it may see (its county's)
  CIVLINK_COUNTY_SEX1_ROWS  of which with sex = '1'
  CIVLINK_TOWNSHIP_USER     the township-level principal's name
  CIVLINK_TOWNSHIP_TOKEN    its token
  CIVLINK_TOWNSHIP_ROWS     rows it may see (its township's)
  CIVLINK_TOWNSHIP_SEX1_ROWS of which with sex = '1'
"""

import os
import sys
import traceback

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager

CATALOG = "civlink"


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set (run this through `cargo nextest run -p civlink python_clients`)")
    return value


URI = env("CIVLINK_FLIGHT_URI")
SCHEMA, TABLE = env("CIVLINK_DATASET").split(".", 1)
QUALIFIED = f"{CATALOG}.{SCHEMA}.{TABLE}"
PRINCIPALS = {
    level: {
        "user": env(f"CIVLINK_{level.upper()}_USER"),
        "token": env(f"CIVLINK_{level.upper()}_TOKEN"),
        "rows": int(env(f"CIVLINK_{level.upper()}_ROWS")),
        "sex1": int(env(f"CIVLINK_{level.upper()}_SEX1_ROWS")),
    }
    for level in ("county", "township")
}


def connect_bearer(principal):
    """The token sent as `authorization: Bearer <token>` on every call."""
    return flight_sql.connect(
        URI,
        db_kwargs={adbc_driver_flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {principal['token']}"},
        autocommit=True,
    )


def connect_basic(principal):
    """User name and password (= the token): the Basic handshake, then the bearer it returns."""
    return flight_sql.connect(
        URI,
        db_kwargs={
            adbc_driver_manager.DatabaseOptions.USERNAME.value: principal["user"],
            adbc_driver_manager.DatabaseOptions.PASSWORD.value: principal["token"],
        },
        autocommit=True,
    )


def scalar(conn, sql, parameters=None):
    with conn.cursor() as cur:
        if parameters is None:
            cur.execute(sql)
        else:
            cur.execute(sql, parameters=parameters)
        rows = cur.fetchall()
    assert len(rows) == 1 and len(rows[0]) == 1, f"{sql}: expected one value, got {rows!r}"
    return rows[0][0]


def check_objects(conn):
    objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
    catalogs = {c["catalog_name"]: c for c in objects}
    assert CATALOG in catalogs, f"catalog {CATALOG} not listed: {sorted(catalogs)}"
    schemas = {s["db_schema_name"]: s for s in catalogs[CATALOG]["catalog_db_schemas"] or []}
    assert SCHEMA in schemas, f"schema {SCHEMA} not in {CATALOG}: {sorted(schemas)}"
    tables = {t["table_name"]: t for t in schemas[SCHEMA]["db_schema_tables"] or []}
    assert TABLE in tables, f"table {TABLE} not in {CATALOG}.{SCHEMA}: {sorted(tables)}"
    columns = [c["column_name"] for c in tables[TABLE]["table_columns"] or []]
    for column in ("id_number", "name", "sex", "division_code"):
        assert column in columns, f"column {column} not in {QUALIFIED}: {columns}"
    # The table's Arrow schema through the dedicated call as well.
    schema = conn.adbc_get_table_schema(TABLE, catalog_filter=CATALOG, db_schema_filter=SCHEMA)
    assert "division_code" in schema.names, schema


def check_counts(conn, principal):
    count = scalar(conn, f"SELECT count(*) FROM {QUALIFIED}")
    assert count == principal["rows"], f"count(*) = {count}, expected {principal['rows']}"
    # Every row it sees is inside its division.
    outside = scalar(
        conn,
        f"SELECT count(*) FROM {QUALIFIED} WHERE division_code NOT LIKE '{division_prefix(conn)}%'",
    )
    assert outside == 0, f"{outside} rows outside the principal's division"


def division_prefix(conn):
    # The smallest common prefix of the visible division codes: enough to
    # check that the rows are confined, without knowing the principal's code here.
    with conn.cursor() as cur:
        cur.execute(f"SELECT DISTINCT division_code FROM {QUALIFIED}")
        codes = [r[0] for r in cur.fetchall()]
    assert codes, "no rows visible"
    return os.path.commonprefix(codes)


def check_prepared(conn, principal):
    sql = f"SELECT count(*) FROM {QUALIFIED} WHERE sex = $1"
    count = scalar(conn, sql, parameters=("1",))
    assert count == principal["sex1"], f"{sql} with '1' = {count}, expected {principal['sex1']}"
    # The same statement prepared once and executed with other parameters.
    with conn.cursor() as cur:
        cur.adbc_prepare(sql)
        cur.execute(sql, parameters=("2",))
        (other,) = cur.fetchone()
    assert count + other == principal["rows"], f"sex 1 ({count}) + sex 2 ({other}) != {principal['rows']}"
    # JDBC/ODBC-style `?` placeholders work too (the server numbers them).
    question = scalar(conn, f"SELECT count(*) FROM {QUALIFIED} WHERE sex = ?", parameters=("1",))
    assert question == count, f"'?' placeholder gave {question}, '$1' gave {count}"


def check_masked(conn):
    with conn.cursor() as cur:
        cur.execute(f"SELECT id_number, name FROM {QUALIFIED} LIMIT 5")
        table = cur.fetch_arrow_table()
    assert table.num_rows > 0, "no rows to check masking on"
    for id_number, name in zip(table.column("id_number").to_pylist(), table.column("name").to_pylist()):
        assert id_number is not None and "*" in id_number, f"id_number not masked: {id_number!r}"
        assert name is not None and "*" in name, f"name not masked: {name!r}"


def check_bad_token():
    try:
        with connect_bearer({"token": "clk_0000000000000000_" + "0" * 64}) as conn:
            scalar(conn, f"SELECT count(*) FROM {QUALIFIED}")
    except (adbc_driver_manager.Error, flight_sql.Error) as e:
        assert "unauth" in str(e).lower() or "token" in str(e).lower(), f"unexpected error for a bad token: {e}"
        return
    raise AssertionError("a bad token was accepted")


def main():
    checks = []
    for level, principal in PRINCIPALS.items():
        for how, connect in (("bearer", connect_bearer), ("basic", connect_basic)):
            checks.append((f"{level}/{how}: get_objects", connect, principal, check_objects))
            checks.append((f"{level}/{how}: scoped count", connect, principal, check_counts))
            checks.append((f"{level}/{how}: prepared statement", connect, principal, check_prepared))
            checks.append((f"{level}/{how}: masked columns", connect, principal, check_masked))
    passed = failed = 0
    for name, connect, principal, check in checks:
        try:
            with connect(principal) as conn:
                if check in (check_objects, check_masked):
                    check(conn)
                else:
                    check(conn, principal)
            print(f"ok   {name}")
            passed += 1
        except Exception:
            print(f"FAIL {name}")
            traceback.print_exc(file=sys.stdout)
            failed += 1
    try:
        check_bad_token()
        print("ok   a bad token is refused")
        passed += 1
    except Exception:
        print("FAIL a bad token is refused")
        traceback.print_exc(file=sys.stdout)
        failed += 1
    print(f"{passed} passed, {failed} failed")
    sys.stdout.flush()
    # os._exit: the driver's background threads can crash interpreter shutdown after a correct run.
    os._exit(1 if failed else 0)


if __name__ == "__main__":
    main()
