"""Serving infrastructure: the HTTP server, the refresher that publishes results after
batches, and the host features attach to."""
