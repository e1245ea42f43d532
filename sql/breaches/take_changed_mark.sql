-- Takes the calls_changed mark without a rewind (returns nothing): the changed calls alter no point decided yet.
DELETE FROM calls_changed
