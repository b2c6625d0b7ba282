"""Helpers shared by test files (one home; test files never import each other)."""
