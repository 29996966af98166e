#!/usr/bin/env bash
# Installs what `weir-bench etl` compares against: DuckDB's Python package,
# pinned so that figures taken on different days compare.
set -euo pipefail
python3 -m pip install --quiet --root-user-action=ignore duckdb==2.0.0
python3 -c 'import duckdb; print("duckdb", duckdb.__version__)'
