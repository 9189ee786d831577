import sys

from langan.cli import main

sys.exit(main())
