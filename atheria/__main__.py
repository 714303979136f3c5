"""`python -m atheria COMMAND`: the same as the `atheria` console script."""
import sys

from atheria.cli.main import main

sys.exit(main())
