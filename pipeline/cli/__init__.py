"""The top layer: the `callpulse` commands and the wiring of a long-lived process."""
