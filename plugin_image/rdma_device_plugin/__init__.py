"""RDMA device plugin for Kubernetes (kubelet device-plugin API v1beta1)."""

__version__ = "0.1.0"
