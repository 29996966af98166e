"""The ETL workload done by DuckDB: the reference `weir-bench etl` measures
weir against (install it with bench/setup.sh).

Usage: python3 etl_duckdb.py ORDERS_CSV CUSTOMERS_CSV OUT_CSV

The same work as the weir pipeline, written the way a DuckDB user would:
read both CSV files (types inferred), drop cancelled orders, join the
customers, revenue and order count by country, segment and month, written
to OUT_CSV with COPY (header, comma-separated).
"""

import sys

import duckdb


def literal(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def main() -> None:
    orders, customers, out = sys.argv[1:4]
    con = duckdb.connect()
    con.execute(
        f"""
        COPY (
            WITH orders AS (SELECT * FROM read_csv({literal(orders)})),
                 customers AS (SELECT * FROM read_csv({literal(customers)})),
                 clean AS (SELECT * FROM orders WHERE status <> 'cancelled')
            SELECT o.country, c.segment, date_trunc('month', o.ts) AS month,
                   sum(o.amount) AS revenue, count(*) AS orders
            FROM clean o JOIN customers c USING (customer_id)
            GROUP BY 1, 2, 3
        ) TO {literal(out)} (HEADER, DELIMITER ',')
        """
    )
    con.close()


if __name__ == "__main__":
    main()
