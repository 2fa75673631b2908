"""Domain services: availability (free slots), booking rules."""
