import sys

from car_client.cli import main

sys.exit(main())
