"""The app's job handlers, one module per job, all registered on one listener.

Both functions import :data:`listener`: the receiver to decide whether a job is ours, the worker to run it.
Add a job by writing a module with a ``plugin`` and adding it below.
"""

from flatfile_jobs import FlatfileListener

from . import data_validate, file_extract, file_process, space_configure, workbook_export, workbook_submit

__all__ = ["listener"]

listener = (
    FlatfileListener()
    .use(space_configure.plugin)
    .use(workbook_submit.plugin)
    .use(file_process.plugin)
    .use(data_validate.plugin)
    .use(workbook_export.plugin)
    .use(file_extract.plugin)
)
