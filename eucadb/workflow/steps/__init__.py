"""The launch steps, in the order of docs/architecture.md §5. Adding a step means adding one class and one table entry."""
