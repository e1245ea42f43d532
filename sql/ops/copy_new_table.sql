-- Creates table {table} in database {dst} as a copy of the same table in {src} (one this version's schema doesn't know); returns nothing.
CREATE TABLE {dst}.main.{table} AS SELECT * FROM {src}.main.{table}
