"""`python -m community.cli`: the `community` command, for processes that start it themselves."""

from community.cli import main

main()
