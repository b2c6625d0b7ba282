"""The local cluster's Kubernetes API server: storage with watch, discovery, admission, RBAC, tables."""
