"""`appliance lab`: whole clusters in nested QEMU (the harness lives in qemu_tests)."""
