import sys

from hpcbridge.cli import main

sys.exit(main())
