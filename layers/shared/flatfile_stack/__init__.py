"""The stack's wiring, shared by the Lambda functions and the local run.

``flatfile_jobs`` knows nothing of AWS; this package holds the adapters (SQS or an in-process queue,
Secrets Manager or static secrets, DynamoDB or in-memory idempotency) and the small services each function
calls, so ``functions/*/app.py`` stay wiring and ``flatfile-jobs serve`` runs every line of the same code.
"""
