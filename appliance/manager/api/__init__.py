"""The Web Services API (REST/JSON over HTTPS) at /api/v1."""
