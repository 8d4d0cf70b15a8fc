import sys

from custody.cli import main

sys.exit(main())
