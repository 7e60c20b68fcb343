"""The launch steps, in DESIGN §5 order. Adding a step means adding one class and one table entry."""
