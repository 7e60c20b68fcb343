"""The step engine, the launch/teardown steps and credential sealing (docs/architecture.md §5, §6)."""
