"""Backups of the remote database: WAL archive and base backups in the deployment's bucket (Barman Cloud)."""
