-- Attaches the database file $path as {target}, the fresh file a live copy writes into; returns nothing.
-- {target} is an identifier (ATTACH names are shared by every connection, so each copy has its own).
ATTACH $path AS {target}
