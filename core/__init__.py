"""Pure building blocks shared by every process: no I/O, no imports from other sluice packages."""
