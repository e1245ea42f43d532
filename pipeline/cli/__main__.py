"""`python -m pipeline.cli`: the same as the `callpulse` command."""

from pipeline.cli.entry import main

main()
