"""Generation against inference servers (the third stage)."""
