"""Redis layout and the small stores on it: intake (events and jobs), call states, dead letters."""
