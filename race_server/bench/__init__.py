"""Benchmarks: one JSON object each, run by ``trackside bench …`` (``race_server.bench.cli``).

Modules are imported only by the command that runs them, so ``import race_server.bench`` pulls in
neither the simulator nor torch. The training benchmark's loop needs torch and so stays in
``trainer.bench`` (torch lives in ``trainer`` only); ``race_server.bench.train`` is its entry here.
"""
