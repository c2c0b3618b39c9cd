"""``python -m bench`` (``make bench``): the figures behind "faster and more reliable than the JS plugin".

One run measures everything side by side and prints one table of medians and ratios, with the machine it
ran on, and writes the same to ``bench/results.md``:

1. the receiver in-process (µs per request, requests/s on one core) and its profile when over budget;
2. the receiver's cold start against a script that only imports boto3 and creates an SQS client, the
   top of ``python -X importtime`` and the import time of each function;
3. a no-op job against the fake Flatfile API on loopback, here and with the real
   ``@flatfile/plugin-job-handler`` 0.5.5 installed from npm into ``bench/.js`` and run with node;
4. 10,000 ticks in a tight loop (requests sent, ns per tick), sync and async, and the JS plugin's count;
5. the worker's RSS after 100 and after 1,000 jobs.
"""
