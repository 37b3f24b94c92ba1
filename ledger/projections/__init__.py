"""Read models: pure functions of the events they count, plus the readers that feed them."""
