"""What every learned dispatcher shares: the multi-agent environment, networks, replay, and one
training lifecycle (seeding, resume, saving, safe loading). Each algorithm stays in its own file."""
