"""Worker processes that decode, check and map records beside the main process (pool.py is the
main process's side, worker.py the worker's, prepared.py what a worker computes for a line)."""
