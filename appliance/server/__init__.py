"""Server agent: XML-RPC over HTTPS (port 8899), local SQLite state, libvirt hypervisor layer,
durable events and statistics pushed to the owning manager."""
