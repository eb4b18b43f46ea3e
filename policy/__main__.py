"""Entry point the Pulumi CLI runs (``pulumi preview --policy-pack policy``): serves the ack-rdma pack."""

from ack_rdma_policy.pack import serve

serve()
