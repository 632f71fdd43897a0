"""Running the stack on one machine without containers: `make run` (and the test fixtures)."""
