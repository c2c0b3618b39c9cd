"""The flatfile-jobs command line: demo, serve, invoke, develop."""
