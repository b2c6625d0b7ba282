"""The local cluster: a Kubernetes API server, controllers and one node made of processes on this machine,
good enough for the real helm to install the chart and for the KubernetesExecutor to run its task pods."""
