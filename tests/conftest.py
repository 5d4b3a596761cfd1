"""Shared fixtures: the emulator's pytest plugin (a real HTTPS Entra ID + Defender API on loopback)."""

pytest_plugins = ["emulator.pytest_plugin"]
