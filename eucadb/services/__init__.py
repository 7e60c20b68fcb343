"""The dependent services (CloudWatch-compatible metrics, usage reporting) and their schemas."""
