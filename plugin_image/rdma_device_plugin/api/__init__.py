"""kubelet device-plugin API v1beta1: api.proto and the modules generated from it by scripts/gen_api.py."""
