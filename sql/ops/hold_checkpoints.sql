-- Stops automatic checkpoints (a WAL threshold no run reaches), so the database file stays what the last checkpoint wrote until backup.release_checkpoints sets the writer's threshold again; returns nothing.
SET checkpoint_threshold = '100TB'
