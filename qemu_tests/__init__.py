"""Nested-QEMU end-to-end tests and the small helpers they share (accelerator probe, boot modes)."""
