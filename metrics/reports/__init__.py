"""Analysts' reports: tables built from the stored views, and their HTML rendering."""
