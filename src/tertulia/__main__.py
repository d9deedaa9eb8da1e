"""`python -m tertulia` is the `tertulia` command."""

from tertulia.cli import main

main()
