"""The stack's pieces, shared by the Lambda functions and the local run.

``flatfile_jobs`` knows nothing of AWS; this package holds the adapters (SQS or an in-process queue,
Secrets Manager or static secrets, DynamoDB or in-memory idempotency) and the small services each function
calls with its runtime. ``functions/*/app.py`` compose them (the app's job table handed to a
``FunctionRuntime``), and ``flatfile-jobs serve`` runs every line of the same code. It never imports the app.
"""
