"""The bottom layer: records, config, the SQL loader, caller hashing, validation, the
DuckDB store and the engine every source feeds."""
