"""The command-line shell: one command engine over the WS-API, served over SSH, locally and (deprecated) TCPS."""
