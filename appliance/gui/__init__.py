"""The web GUI: a browser application at /ui/ that talks to the manager core only through the WS-API."""
