"""The Redis-backed tables: bucket hashes, totals, conversation states, dedup marks and
per-partition watermarks, all of one channel under one hash tag."""
