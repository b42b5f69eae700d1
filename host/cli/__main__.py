import sys

from edgeperf.cli.main import main

sys.exit(main())
