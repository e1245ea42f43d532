-- Detaches the attached database {db}; returns nothing.
DETACH {db}
