"""flatfile_jobs: run Flatfile jobs from Python, with parity to @flatfile/plugin-job-handler."""
