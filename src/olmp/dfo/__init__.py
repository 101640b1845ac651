"""The derivative-free engine (see DESIGN.md section 2)."""
