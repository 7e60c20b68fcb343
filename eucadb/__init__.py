"""eucadb — hosts a cloud's append-only databases on instances the cloud launches itself."""
__version__ = "0.1.0"
