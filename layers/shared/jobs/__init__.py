"""The app's job handlers, one module per job, registered on one listener."""
