"""Helpers every test suite shares and no runtime package may import: free ports, service
processes, the whole system as `make run` starts it, clusters, and per-service helpers.

Not a workspace member and in no image: pytest finds it through `pythonpath` and mypy
through `mypy_path` (root pyproject.toml); docs/decisions/test-support.md says why.
"""
