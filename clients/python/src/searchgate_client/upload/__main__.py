import sys

from searchgate_client.upload.cli import main

sys.exit(main())
