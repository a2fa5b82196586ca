"""`python -m marketmeter` runs the command-line interface."""

from marketmeter.cli import main

main()
