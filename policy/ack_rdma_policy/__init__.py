"""The ack-rdma CrossGuard policy pack.

``rules`` holds the checks as pure functions (standard library only), so the program's tests can run them over
the resources the program declares under Pulumi's mock engine; ``pack`` wraps them as ``pulumi_policy``
policies, which need the pack's own virtualenv (``policy/requirements.txt``).
"""
