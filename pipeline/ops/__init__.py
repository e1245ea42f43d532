"""Operations on a stored database: backups and restore, retention, the analysts' read-only copy."""
