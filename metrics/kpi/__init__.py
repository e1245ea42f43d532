"""KPI read model over the store: the snapshot the boards show, breach detection, and the
staffing models (Erlang C and A) over plain numbers."""
