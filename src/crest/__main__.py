"""`python -m crest` (and `torchrun -m crest`) run the CLI."""

import sys

from crest.cli import main

sys.exit(main())
