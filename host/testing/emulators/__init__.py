"""Instruments emulated byte for byte, for tests and for rehearsing without hardware."""
