"""Shared test configuration: keep it minimal (each test package has its own conftest)."""

pytest_plugins = ["pytester"]
