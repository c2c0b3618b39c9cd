"""The app's job table: which jobs it takes, and where each job's handler lives.

The receiver reads the table to decide whether a job is ours without importing any handler module (or what it
imports); the worker imports a handler's module the first time one of its jobs runs. Add a job by writing a
module with a ``plugin`` and adding its row below (``multipart=True`` for a ``multipart_job_handler``).
"""

from flatfile_jobs import JobRoute, job_table

__all__ = ["listener"]

listener = job_table(
    JobRoute("space:configure", "flatfile_app_jobs.space_configure:plugin"),
    JobRoute("workbook:submit", "flatfile_app_jobs.workbook_submit:plugin"),
    JobRoute("file:process", "flatfile_app_jobs.file_process:plugin"),
    JobRoute("data:validate", "flatfile_app_jobs.data_validate:plugin"),
    JobRoute("workbook:export", "flatfile_app_jobs.workbook_export:plugin", multipart=True),
    JobRoute("file:extract", "flatfile_app_jobs.file_extract:plugin"),
)
