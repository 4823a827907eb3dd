"""`python -m gigawatt`, the same as the `gigawatt` command."""

from gigawatt.cli import main

raise SystemExit(main())
