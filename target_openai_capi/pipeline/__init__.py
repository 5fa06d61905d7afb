"""One run of the target: events built (events.py), batched (batching.py), delivered, settled
(settling.py), wired by run.py; settings.py reads the config once."""
