"""The step engine, the launch/teardown steps and credential sealing (DESIGN §5, §6)."""
