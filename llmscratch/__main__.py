"""``python -m llmscratch --help``: the book's command line (:mod:`llmscratch.cli`)."""

from .cli import main

raise SystemExit(main())
