"""The Faust worker: consumer, batches, the processor (decode, read, fold, apply), dead
letters, timers and the watchdog, and its own metrics."""
