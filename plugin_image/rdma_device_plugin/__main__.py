"""`python -m rdma_device_plugin`: the same as the rdma-device-plugin command."""

import sys

from rdma_device_plugin.cli import main

sys.exit(main())
