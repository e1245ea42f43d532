-- Returns whether any quality record waits in quality_pending for its call's offer (one row, one boolean).
SELECT EXISTS (FROM quality_pending)
