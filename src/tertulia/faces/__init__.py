"""HTTP dialects over the one core; each face is a thin translator (see ARCHITECTURE.md)."""
