"""Manager core: WS-API over HTTPS, MariaDB schema and migrations, jobs, events, statistics, backups."""
