"""The node: runs the containers of the pods bound to it as process trees with container semantics."""
