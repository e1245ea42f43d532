-- Replaces the rows of table {table} in database {dst} with those of the same table in {src} (columns matched by name); returns nothing.
DELETE FROM {dst}.main.{table};
INSERT INTO {dst}.main.{table} BY NAME SELECT * FROM {src}.main.{table};
