"""Mechanisms shared by every Terapi service: config, events, bus, storage, crypto, logs."""
