"""KPI read model over the store: the snapshot the boards show, and breach detection."""
