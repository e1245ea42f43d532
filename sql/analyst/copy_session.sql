-- Settings of the second connection a snapshot copy runs on, in a background thread (returns nothing): no progress bar on the terminal.
SET enable_progress_bar = false
