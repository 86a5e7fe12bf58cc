"""`python -m marsserver`."""

from .cli import main

main()
