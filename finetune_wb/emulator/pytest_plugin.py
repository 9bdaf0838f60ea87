"""pytest plugin that ships the emulator fixtures (placeholder until issue 3 lands)."""
